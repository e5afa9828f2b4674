package gcpolicy

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

const mib = 1 << 20

func TestGCPercent(t *testing.T) {
	tests := []struct {
		name           string
		live, headroom uint64
		want           int
	}{
		{"nothing measured yet counts as the minimum heap", 0, 256 * mib, 6400},
		{"tiny live heap counts as the minimum heap", 1 * mib, 256 * mib, 6400},
		{"small live heap", 64 * mib, 256 * mib, 400},
		{"rounded up to keep the whole headroom", 300 * mib, 1024 * mib, 342},
		{"live heap equal to the headroom: Go's default", 256 * mib, 256 * mib, 100},
		{"live heap above the headroom: Go's default", 300 * mib, 256 * mib, 100},
		{"headroom counts at most 1 TiB", 4 * mib, 1 << 62, 1 << 20 * 100 / 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := gcPercent(tt.live, tt.headroom); got != tt.want {
				t.Errorf("gcPercent(%d, %d) = %d, want %d", tt.live, tt.headroom, got, tt.want)
			}
		})
	}
}

func TestStartKeepsHeadroomAboveLiveHeap(t *testing.T) {
	t.Setenv("GOGC", "")
	tests := []struct {
		name     string
		ballast  uint64 // live bytes held during the test
		headroom uint64
	}{
		{"small live heap", 16 * mib, 256 * mib},
		{"live heap above the headroom", 64 * mib, 16 * mib},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ballast := make([]byte, tt.ballast)
			runtime.GC()
			original := readGC().percent
			stop := Start(tt.headroom)
			got := readGC()
			stop()
			runtime.KeepAlive(ballast)

			if want := gcPercent(got.live, tt.headroom); got.percent != want {
				t.Errorf("GC percent %d with live heap %d, want %d", got.percent, got.live, want)
			}
			if got.goal < max(2*got.live, got.live+tt.headroom) {
				t.Errorf("heap goal %d below the live heap %d + max(itself, headroom %d)", got.goal, got.live, tt.headroom)
			}
			if after := readGC().percent; after != original {
				t.Errorf("GC percent after stop = %d, want %d", after, original)
			}
		})
	}
}

func TestPolicyFollowsLiveHeapAfterEachCollection(t *testing.T) {
	t.Setenv("GOGC", "")
	const headroom = 16 * mib
	runtime.GC()
	original := readGC().percent
	stop := Start(headroom)
	defer stop()
	// With 16 MiB live or more the headroom needs no more than Go's
	// default.
	if p := readGC().percent; p <= defaultPercent {
		t.Fatalf("GC percent %d with a small live heap, want above %d", p, defaultPercent)
	}

	ballast := make([]byte, 64*mib)
	waitPercent(t, "a live heap of 64 MiB more", func(p int) bool { return p == defaultPercent })
	runtime.KeepAlive(ballast)
	waitPercent(t, "the live heap freed again", func(p int) bool { return p > defaultPercent })

	stop()
	if p := readGC().percent; p != original {
		t.Fatalf("GC percent after stop = %d, want %d", p, original)
	}
	for range 3 {
		runtime.GC()
	}
	if p := readGC().percent; p != original {
		t.Errorf("GC percent %d after collections following stop, want %d", p, original)
	}
}

func TestStartRespectsExplicitTuning(t *testing.T) {
	tests := []struct {
		name     string
		gogc     string
		headroom uint64
	}{
		{"GOGC set", "200", DefaultHeadroom},
		{"GOGC set to the default", "100", DefaultHeadroom},
		{"zero headroom", "", 0},
	}
	const tuned = 137 // a percentage the policy would never choose
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOGC", tt.gogc)
			defer debug.SetGCPercent(debug.SetGCPercent(tuned))
			stop := Start(tt.headroom)
			runtime.GC()
			runtime.GC()
			running := readGC().percent
			stop()
			if after := readGC().percent; running != tuned || after != tuned {
				t.Errorf("GC percent %d while running, %d after stop, want %d", running, after, tuned)
			}
		})
	}
}

// gcState is what the runtime reports about its pacing.
type gcState struct {
	percent    int
	goal, live uint64
}

func readGC() gcState {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/heap/goal:bytes"}, {Name: liveMetric}}
	metrics.Read(s)
	return gcState{percent: int(s[0].Value.Uint64()), goal: s[1].Value.Uint64(), live: s[2].Value.Uint64()}
}

// waitPercent runs collections until the GC percentage satisfies ok, so
// that the policy has seen the heap as it is now.
func waitPercent(t *testing.T, what string, ok func(int) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p := readGC().percent
		if ok(p) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GC percent still %d after collections with %s", p, what)
		}
		runtime.GC()
	}
}
