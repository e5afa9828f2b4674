package etcd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gatehouse/gatehouse/internal/store"
)

// maxAttempts bounds the transactions of one write that keeps losing
// races against other writers of the same key. A write that lost retries
// at once from the key as the failed transaction read it, so it is ahead
// of a winner that reads the key again for its next write.
const maxAttempts = 100

var errEmptyKey = errors.New("etcd: empty key")

// Put stores item unconditionally.
func (s *Store) Put(ctx context.Context, item store.Item) (store.Item, error) {
	resp, err := s.commit(ctx, item.Key, nil, &item)
	if err != nil {
		return store.Item{}, err
	}
	item.Revision = resp.Header.Revision
	return item, nil
}

// Create stores item only if no live item exists under its key. It starts
// from the guess that the key is absent, which its transaction checks, so
// an uncontended Create is a single request.
func (s *Store) Create(ctx context.Context, item store.Item) (store.Item, error) {
	return s.update(ctx, item.Key, nil, func(cur *store.Item) (*store.Item, error) {
		if cur != nil {
			return nil, store.ErrExists
		}
		return &item, nil
	})
}

// CompareAndSwap replaces the live item under item.Key if its revision is
// expected.
func (s *Store) CompareAndSwap(ctx context.Context, expected int64, item store.Item) (store.Item, error) {
	return s.readUpdate(ctx, item.Key, func(cur *store.Item) (*store.Item, error) {
		switch {
		case cur == nil:
			return nil, store.ErrNotFound
		case cur.Revision != expected:
			return nil, store.ErrConflict
		}
		return &item, nil
	})
}

// Update reads the key, applies fn and writes the result in a transaction
// that succeeds only if the key did not change since the read; on a
// conflict it applies fn again to the key as the transaction found it.
// After many lost races it gives up with an error wrapping
// store.ErrConflict.
func (s *Store) Update(ctx context.Context, key string, fn store.UpdateFunc) (store.Item, error) {
	return s.readUpdate(ctx, key, fn)
}

// Delete removes the live item under key.
func (s *Store) Delete(ctx context.Context, key string) error {
	_, err := s.readUpdate(ctx, key, func(cur *store.Item) (*store.Item, error) {
		if cur == nil {
			return nil, store.ErrNotFound
		}
		return nil, nil
	})
	return err
}

// readUpdate reads the stored item under key and updates it with fn.
func (s *Store) readUpdate(ctx context.Context, key string, fn store.UpdateFunc) (store.Item, error) {
	cur, err := s.get(ctx, key)
	if err != nil {
		return store.Item{}, err
	}
	return s.update(ctx, key, cur, fn)
}

// update applies fn to cur, the stored item under key (nil if absent), and
// writes the result if the key is still as cur says, starting over from
// the key as the transaction found it until that holds.
func (s *Store) update(ctx context.Context, key string, cur *store.Item, fn store.UpdateFunc) (store.Item, error) {
	for attempt := 1; ; attempt++ {
		current := live(cur, time.Now())
		next, err := fn(current)
		if err != nil {
			return store.Item{}, err
		}
		if next == nil && current == nil {
			return store.Item{Key: key}, nil
		}
		if next != nil {
			it := *next
			it.Key = key
			next = &it
		}
		unchanged := clientv3.Compare(clientv3.ModRevision(s.key(key)), "=", modRevision(cur))
		resp, err := s.commit(ctx, key, []clientv3.Cmp{unchanged}, next)
		switch {
		case err != nil:
			return store.Item{}, err
		case resp.Succeeded && next == nil:
			return store.Item{Key: key, Revision: resp.Header.Revision}, nil
		case resp.Succeeded:
			next.Revision = resp.Header.Revision
			return *next, nil
		case attempt == maxAttempts:
			return store.Item{}, fmt.Errorf("%w: %q changed under %d attempts to update it", store.ErrConflict, key, maxAttempts)
		}
		if cur, err = s.found(resp); err != nil {
			return store.Item{}, err
		}
	}
}

// commit runs a transaction that, if every comparison holds, stores next
// under key, or deletes the key when next is nil; otherwise it reads the
// key. A lease that ran out between being handed out and being used is
// replaced once.
func (s *Store) commit(ctx context.Context, key string, cmps []clientv3.Cmp, next *store.Item) (*clientv3.TxnResponse, error) {
	if key == "" {
		return nil, errEmptyKey
	}
	for replaced := false; ; replaced = true {
		op, lease, err := s.writeOp(ctx, key, next)
		if err != nil {
			return nil, err
		}
		var resp *clientv3.TxnResponse
		err = s.call(ctx, func(ctx context.Context) error {
			var err error
			resp, err = s.client.Txn(ctx).If(cmps...).Then(op).Else(clientv3.OpGet(s.key(key))).Commit()
			return err
		})
		if errors.Is(err, rpctypes.ErrLeaseNotFound) && !replaced {
			s.leases.forget(lease)
			continue
		}
		return resp, err
	}
}

// writeOp is the operation storing next under key (with the lease of its
// expiry, returned too), or deleting key when next is nil.
func (s *Store) writeOp(ctx context.Context, key string, next *store.Item) (clientv3.Op, clientv3.LeaseID, error) {
	if next == nil {
		return clientv3.OpDelete(s.key(key)), 0, nil
	}
	if next.Expires.IsZero() {
		return clientv3.OpPut(s.key(key), encodeEnvelope(*next)), 0, nil
	}
	lease, err := s.leases.forExpiry(ctx, s.timeout, next.Expires)
	if err != nil {
		return clientv3.Op{}, 0, s.mapError(ctx, err)
	}
	return clientv3.OpPut(s.key(key), encodeEnvelope(*next), clientv3.WithLease(lease)), lease, nil
}

// found returns the item the failed transaction read (nil if absent).
func (s *Store) found(resp *clientv3.TxnResponse) (*store.Item, error) {
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return nil, nil
	}
	return s.decode(kvs[0])
}

// live returns a copy of the stored item it for an UpdateFunc, or nil
// when it is absent (nil) or expired at now.
func live(it *store.Item, now time.Time) *store.Item {
	if it == nil || it.Expired(now) {
		return nil
	}
	c := *it
	return &c
}

// modRevision is the revision a transaction compares against: 0 when the
// key is absent, which etcd's compare treats as "does not exist".
func modRevision(it *store.Item) int64 {
	if it == nil {
		return 0
	}
	return it.Revision
}
