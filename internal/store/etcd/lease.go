package etcd

import (
	"context"
	"math"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// leases hands out the leases that make etcd delete expiring items. Items
// expiring within the same bucket (see leaseEnd) share one lease, which
// lasts until the end of that bucket or a little later: etcd deletes them together, in one
// revision, without one lease per key. Expiry is also kept in each item's
// envelope, so reads hide an item from its precise expiry on, before the
// lease runs out.
type leases struct {
	lease clientv3.Lease

	mu     sync.Mutex
	grants map[int64]*grant // by the Unix second its bucket ends
	pruned int64            // Unix second of the last pruning
}

// grant is a lease being granted or granted; ready is closed once id or
// err is set.
type grant struct {
	ready chan struct{}
	id    clientv3.LeaseID
	err   error
}

func newLeases(lease clientv3.Lease) *leases {
	return &leases{lease: lease, grants: make(map[int64]*grant)}
}

// maxLeaseWidth bounds how many seconds of expiries one lease covers.
const maxLeaseWidth = 4096 * time.Second

// leaseEnd is the instant the shared lease covering expires runs out: the
// end of a bucket of expiries whose width grows with their distance from
// now — one second for what expires within a few minutes, up to
// maxLeaseWidth (about an hour) for what expires days away — so that long
// retentions need a few hundred leases rather than one per second. Widths
// are powers of two seconds, so buckets line up across writes. A lease may
// run out later than an item's expiry; reads hide the item from its
// precise expiry on, so that costs only space.
func leaseEnd(expires, now time.Time) time.Time {
	width := time.Second
	for width < maxLeaseWidth && 2*width <= expires.Sub(now)/128 {
		width *= 2
	}
	n, w := expires.UnixNano(), int64(width) // buckets aligned on the Unix epoch
	end := n - n%w
	if end < n {
		end += w
	}
	return time.Unix(0, end)
}

// forExpiry returns a lease that runs out no earlier than expires,
// granting it (within timeout) if no item of the same bucket has one.
func (l *leases) forExpiry(ctx context.Context, timeout time.Duration, expires time.Time) (clientv3.LeaseID, error) {
	end := leaseEnd(expires, time.Now())
	l.mu.Lock()
	g, ok := l.grants[end.Unix()]
	if !ok {
		l.prune(time.Now())
		g = &grant{ready: make(chan struct{})}
		l.grants[end.Unix()] = g
		// The grant is shared, so it must not fail because the first
		// caller gave up.
		gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		go func() {
			defer cancel()
			l.complete(gctx, end, g)
		}()
	}
	l.mu.Unlock()
	select {
	case <-g.ready:
		return g.id, g.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// complete grants the lease of g, lasting until end, and drops g on
// failure so that the next write asks again.
func (l *leases) complete(ctx context.Context, end time.Time, g *grant) {
	resp, err := l.lease.Grant(ctx, ttl(end, time.Now()))
	if err == nil {
		g.id = resp.ID
	} else {
		g.err = err
		l.drop(end, g)
	}
	close(g.ready)
}

// forget drops the lease id, once etcd said it no longer exists.
func (l *leases) forget(id clientv3.LeaseID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for end, g := range l.grants {
		if isReady(g) && g.id == id {
			delete(l.grants, end)
		}
	}
}

func (l *leases) drop(end time.Time, g *grant) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.grants[end.Unix()] == g {
		delete(l.grants, end.Unix())
	}
}

// prune drops, at most once a second, the leases of past seconds; l.mu is
// held.
func (l *leases) prune(now time.Time) {
	if now.Unix() <= l.pruned {
		return
	}
	l.pruned = now.Unix()
	for sec, g := range l.grants {
		if sec < now.Unix() && isReady(g) {
			delete(l.grants, sec)
		}
	}
}

func isReady(g *grant) bool {
	select {
	case <-g.ready:
		return true
	default:
		return false
	}
}

// ttl is the lease time to live, in whole seconds, that runs out no
// earlier than end when granted at now.
func ttl(end, now time.Time) int64 {
	secs := math.Ceil(end.Sub(now).Seconds())
	return int64(min(max(secs, 1), clientv3.MaxLeaseTTL))
}
