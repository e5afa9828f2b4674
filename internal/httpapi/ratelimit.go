package httpapi

import (
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/gatehouse/gatehouse/internal/authz"
)

// ipLimiter is a per-client token bucket for the token-issuing endpoints,
// keyed by authz.ClientKey (an IPv6 client by its /64). Idle buckets are
// dropped, and the map never holds more than maxBuckets.
type ipLimiter struct {
	limit rate.Limit
	burst int
	mu    sync.Mutex
	m     map[string]*bucket
	swept time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// maxBuckets bounds the limiter's memory against clients that rotate
// addresses: past it, every bucket is dropped (all clients start afresh).
const maxBuckets = 100_000

func newIPLimiter(perSecond float64, burst int) *ipLimiter {
	if perSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(int(perSecond*2), 1)
	}
	return &ipLimiter{limit: rate.Limit(perSecond), burst: burst, m: map[string]*bucket{}}
}

// allow reports whether ip may make one more request now. A nil limiter
// allows everything.
func (l *ipLimiter) allow(ip string) bool {
	if l == nil {
		return true
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		for k, b := range l.m {
			if now.Sub(b.seen) > time.Minute {
				delete(l.m, k)
			}
		}
		l.swept = now
	}
	key := authz.ClientKey(ip)
	b, ok := l.m[key]
	if !ok {
		if len(l.m) >= maxBuckets {
			clear(l.m)
		}
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.m[key] = b
	}
	b.seen = now
	return b.lim.AllowN(now, 1)
}
