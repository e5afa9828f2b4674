package etcd

import (
	"context"
	"math"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// leases hands out the leases that make etcd delete expiring items. Items
// expiring within the same second share one lease, which lasts until the
// end of that second or a little later: etcd deletes them together, in one
// revision, without one lease per key. Expiry is also kept in each item's
// envelope, so reads hide an item from its precise expiry on, before the
// lease runs out.
type leases struct {
	lease clientv3.Lease

	mu     sync.Mutex
	grants map[int64]*grant // by the Unix second the lease runs out
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

// expirySecond is the end of the second in which expires falls: the
// instant the shared lease of that second runs out.
func expirySecond(expires time.Time) time.Time {
	end := expires.Truncate(time.Second)
	if end.Before(expires) {
		end = end.Add(time.Second)
	}
	return end
}

// forExpiry returns a lease that runs out no earlier than expires,
// granting it (within timeout) if no item of the same second has one.
func (l *leases) forExpiry(ctx context.Context, timeout time.Duration, expires time.Time) (clientv3.LeaseID, error) {
	end := expirySecond(expires)
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

// forget drops the lease of expires's second if it is id, once etcd said
// it no longer exists.
func (l *leases) forget(expires time.Time, id clientv3.LeaseID) {
	end := expirySecond(expires)
	l.mu.Lock()
	defer l.mu.Unlock()
	if g, ok := l.grants[end.Unix()]; ok && isReady(g) && g.id == id {
		delete(l.grants, end.Unix())
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
