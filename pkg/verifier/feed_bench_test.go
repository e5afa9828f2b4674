package verifier_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/pkg/verifier"
)

// BenchmarkFeedPropagation: each iteration logs a token out through
// replica B and waits until a verifier following replica A's feed
// refuses it. It reports the median and 99th percentile of the time from
// the logout's answer on B to the verifier's first refusal (docs/
// benchmarks.md); run it with -benchtime=200x or so.
func BenchmarkFeedPropagation(b *testing.B) {
	a, rb := replicas(b, nil)
	root := rb.Root()
	v := feedVerifier(b, a.Base, a.Base, feedAccount(b, rb, root), nil)
	createAccount(b, rb, root, "pat", "Pat-Passw0rd!", "developer")
	tokens := make([]string, b.N)
	for i := range tokens {
		tokens[i] = loginOn(b, rb, "pat", "Pat-Passw0rd!")
	}
	delays := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for _, tok := range tokens {
		send(b, rb, "DELETE", "/v4/token", tok, nil)
		acked := time.Now()
		for {
			_, err := v.Verify(context.Background(), tok)
			if errors.Is(err, verifier.ErrRevoked) {
				break
			}
			if time.Since(acked) > patience {
				b.Fatalf("not refused within %v: %v", patience, err)
			}
			time.Sleep(100 * time.Microsecond)
		}
		delays = append(delays, time.Since(acked))
	}
	b.StopTimer()
	slices.Sort(delays)
	ms := func(q int) float64 { return float64(delays[(len(delays)-1)*q/100]) / float64(time.Millisecond) }
	b.ReportMetric(ms(50), "p50-ms")
	b.ReportMetric(ms(99), "p99-ms")
	b.ReportMetric(ms(100), "max-ms")
}

// BenchmarkVerifyFeed is the cost of one verification of a valid token
// without and with the revocation feed: with it, a check stays a memory
// lookup.
func BenchmarkVerifyFeed(b *testing.B) {
	s := servertest.Start(b, nil)
	root := s.Root()
	for _, feed := range []bool{false, true} {
		name := "feed=off"
		opts := verifier.Options{JWKSURL: s.Base + "/.well-known/jwks.json"}
		if feed {
			name = "feed=on"
			opts.Feed = &verifier.Feed{URL: s.Base + "/v4/revocations", Token: func(context.Context) (string, error) { return root, nil }}
		}
		v, err := verifier.New(context.Background(), opts)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := v.Verify(context.Background(), root); err != nil {
					b.Fatal(err)
				}
			}
		})
		v.Close()
	}
}
