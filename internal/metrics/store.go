package metrics

import (
	"context"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// InstrumentStore wraps st so every operation's latency is observed in
// StoreLatency, but Scan's: a scan lasts as long as its caller's work on
// each page (a backup streaming to its client), not the store's.
func InstrumentStore(st store.Store) store.Store { return timedStore{st} }

type timedStore struct{ store.Store }

func observe(op string, start time.Time) {
	StoreLatency.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

func (s timedStore) Get(ctx context.Context, key string) (store.Item, error) {
	defer observe("get", time.Now())
	return s.Store.Get(ctx, key)
}

func (s timedStore) List(ctx context.Context, prefix string) ([]store.Item, int64, error) {
	defer observe("list", time.Now())
	return s.Store.List(ctx, prefix)
}

func (s timedStore) Create(ctx context.Context, it store.Item) (store.Item, error) {
	defer observe("create", time.Now())
	return s.Store.Create(ctx, it)
}

func (s timedStore) Put(ctx context.Context, it store.Item) (store.Item, error) {
	defer observe("put", time.Now())
	return s.Store.Put(ctx, it)
}

func (s timedStore) CompareAndSwap(ctx context.Context, expected int64, it store.Item) (store.Item, error) {
	defer observe("cas", time.Now())
	return s.Store.CompareAndSwap(ctx, expected, it)
}

func (s timedStore) Update(ctx context.Context, key string, fn store.UpdateFunc) (store.Item, error) {
	defer observe("update", time.Now())
	return s.Store.Update(ctx, key, fn)
}

func (s timedStore) Delete(ctx context.Context, key string) error {
	defer observe("delete", time.Now())
	return s.Store.Delete(ctx, key)
}
