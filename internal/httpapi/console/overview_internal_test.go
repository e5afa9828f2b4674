package console

import (
	"math"
	"testing"
)

// TestQuantile: p99 of the requests between two samples, interpolated in
// its bucket; the last finite bound past the buckets; none without
// requests.
func TestQuantile(t *testing.T) {
	bounds := []float64{0.001, 0.01, 0.1}
	a := sample{latency: []float64{5, 5, 5}, bounds: bounds, requests: 5}
	for _, tc := range []struct {
		name string
		b    sample
		want float64 // ms; NaN: none
	}{
		{"in a bucket", sample{latency: []float64{15, 95, 105}, bounds: bounds, requests: 105}, 91},
		{"past the buckets", sample{latency: []float64{15, 95, 105}, bounds: bounds, requests: 205}, 100},
		{"no requests", a, math.NaN()},
	} {
		got := quantile(0.99, a, tc.b)
		switch {
		case math.IsNaN(tc.want) && got != nil:
			t.Errorf("%s: %v, want none", tc.name, *got)
		case !math.IsNaN(tc.want) && (got == nil || math.Abs(*got-tc.want) > 1e-9):
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
