package cluster

import (
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// revocations is how many logouts testPropagation measures.
const revocations = 100

// testPropagation measures how long after a logout on A answered replica
// B still accepts the revoked token, polling B every 2 ms, over many
// logouts. It logs the distribution and asserts only the contract's
// bound.
func testPropagation(t *testing.T, f *fleet, root string) {
	a, b := f.reps[0], f.reps[1]
	const pw = "Carol-Passw0rd!"
	a.createAccount(t, root, "carol", pw)
	waitAccount(t, f, root, "carol")
	tokens := loginMany(t, f, "carol", pw, revocations)

	var delays, logouts []time.Duration
	for _, tok := range tokens {
		b.must(t, "GET", "/v4/self-perms", nil, bearer(tok)...)
		sent := time.Now()
		a.must(t, "DELETE", "/v4/token", nil, bearer(tok)...)
		acked := time.Now()
		logouts = append(logouts, acked.Sub(sent))
		for {
			r, err := b.selfPerms(tok)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status == http.StatusUnauthorized {
				break
			}
			if time.Since(acked) > propagationBound {
				t.Fatalf("B still accepts a token %v after its logout on A: %s", propagationBound, r)
			}
			time.Sleep(2 * time.Millisecond)
		}
		delays = append(delays, time.Since(acked))
	}
	d, l := percentiles(delays), percentiles(logouts)
	t.Logf("revocation A→B over %d logouts, from the logout's answer on A to B's first 401: median %v, p90 %v, max %v (logout latency on A: median %v, max %v)",
		len(delays), d[50], d[90], d[100], l[50], l[100])
}

// loginMany signs name in n times, spread over the replicas, and returns
// the tokens.
func loginMany(t *testing.T, f *fleet, name, password string, n int) []string {
	t.Helper()
	tokens := make([]string, n)
	errs := make([]error, len(f.reps))
	var wg sync.WaitGroup
	for w, rp := range f.reps {
		wg.Go(func() {
			for i := w; i < n && errs[w] == nil; i += len(f.reps) {
				r, err := rp.send("POST", "/v4/token", credentials{name, password})
				if err == nil {
					err = r.is(http.StatusOK, "")
				}
				tokens[i], errs[w] = r.field("token"), err
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return tokens
}

// percentiles returns the 50th, 90th and 100th percentiles of ds.
func percentiles(ds []time.Duration) map[int]time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	p := map[int]time.Duration{}
	for _, q := range []int{50, 90, 100} {
		p[q] = s[(len(s)-1)*q/100].Round(10 * time.Microsecond)
	}
	return p
}
