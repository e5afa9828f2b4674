package httpapi

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/time/rate"

	"github.com/gatehouse/gatehouse/internal/authz"
)

// ipLimiter is a per-client token bucket for the token-issuing endpoints,
// keyed by authz.ClientKey (an IPv6 client by its /64). Buckets idle for
// idleBucket are dropped, and at most maxBuckets are kept: past it the
// least recently seen client's bucket is dropped, so a flood of new
// addresses cannot reset the buckets of the clients still sending.
type ipLimiter struct {
	now     func() time.Time
	limit   rate.Limit
	burst   int
	mu      sync.Mutex
	buckets *simplelru.LRU[string, *bucket] // least recently seen first
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

const (
	// maxBuckets bounds the limiter's memory against clients that
	// rotate addresses.
	maxBuckets = 100_000
	// idleBucket is how long a bucket is kept without requests.
	idleBucket = time.Minute
)

// newIPLimiter returns a limiter of perSecond sustained requests and
// burst per client, reading time from now; nil when perSecond is not
// positive.
func newIPLimiter(perSecond float64, burst int, now func() time.Time) *ipLimiter {
	if perSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(int(perSecond*2), 1)
	}
	buckets, err := simplelru.NewLRU[string, *bucket](maxBuckets, nil)
	if err != nil {
		panic("httpapi: " + err.Error()) // only for a size below one
	}
	return &ipLimiter{now: now, limit: rate.Limit(perSecond), burst: burst, buckets: buckets}
}

// allow reports whether ip may make one more request now. A nil limiter
// allows everything.
func (l *ipLimiter) allow(ip string) bool {
	if l == nil {
		return true
	}
	key := authz.ClientKey(ip)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		_, b, ok := l.buckets.GetOldest()
		if !ok || now.Sub(b.seen) <= idleBucket {
			break
		}
		l.buckets.RemoveOldest()
	}
	b, ok := l.buckets.Get(key)
	if !ok {
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets.Add(key, b)
	}
	b.seen = now
	return b.lim.AllowN(now, 1)
}
