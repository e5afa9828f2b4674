package httpapi

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ipLimiter is a per-client-IP token bucket for the token-issuing
// endpoints. Idle buckets are dropped so the map stays small.
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
	b, ok := l.m[ip]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.m[ip] = b
	}
	b.seen = now
	return b.lim.AllowN(now, 1)
}
