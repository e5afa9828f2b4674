package httpapi

import (
	"fmt"
	"testing"
	"time"
)

// A flood of new addresses, more than the limiter keeps, drops the least
// recently seen buckets only: a client that keeps sending keeps its
// exhausted burst.
func TestRateLimitSurvivesAddressFlood(t *testing.T) {
	l := newIPLimiter(0.001, 2, time.Now)
	const client = "192.0.2.1"
	for range 2 {
		if !l.allow(client) {
			t.Fatal("burst refused")
		}
	}
	if l.allow(client) {
		t.Fatal("exhausted burst allowed")
	}
	for i := range maxBuckets + maxBuckets/2 {
		l.allow(fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff))
		if i%1000 == 0 && l.allow(client) {
			t.Fatalf("after %d other addresses the client's burst was refilled", i)
		}
	}
	if l.allow(client) {
		t.Fatal("after the flood the client's burst was refilled")
	}
	if n := l.buckets.Len(); n != maxBuckets {
		t.Fatalf("%d buckets, want the bound %d", n, maxBuckets)
	}
	if l.buckets.Contains("10.0.0.1") {
		t.Fatal("the least recently seen address was kept")
	}
}
