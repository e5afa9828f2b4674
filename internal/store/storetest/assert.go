package storetest

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

func mustCreate(t *testing.T, s store.Store, item store.Item) store.Item {
	t.Helper()
	it, err := s.Create(t.Context(), item)
	if err != nil {
		t.Fatalf("Create(%q): %v", item.Key, err)
	}
	assertWritten(t, it, item)
	return it
}

func mustPut(t *testing.T, s store.Store, item store.Item) store.Item {
	t.Helper()
	it, err := s.Put(t.Context(), item)
	if err != nil {
		t.Fatalf("Put(%q): %v", item.Key, err)
	}
	assertWritten(t, it, item)
	return it
}

// assertWritten checks that a write returned the item it was given with a
// revision set.
func assertWritten(t *testing.T, got, written store.Item) {
	t.Helper()
	if got.Key != written.Key || string(got.Value) != string(written.Value) || got.Revision <= 0 {
		t.Fatalf("write of %q returned %+v, want the item with a positive revision", written.Key, got)
	}
}

func mustGet(t *testing.T, s store.Store, key string) store.Item {
	t.Helper()
	it, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return it
}

func mustList(t *testing.T, s store.Store, prefix string) ([]store.Item, int64) {
	t.Helper()
	items, rev, err := s.List(t.Context(), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return items, rev
}

func mustWatch(t *testing.T, ctx context.Context, s store.Store, prefix string, from int64) store.Watcher {
	t.Helper()
	w, err := s.Watch(ctx, prefix, from)
	if err != nil {
		t.Fatalf("Watch(%q, %d): %v", prefix, from, err)
	}
	return w
}

// assertItem checks that a read returned the item as it was written.
func assertItem(t *testing.T, got, want store.Item) {
	t.Helper()
	if got.Key != want.Key || string(got.Value) != string(want.Value) || got.Revision != want.Revision {
		t.Errorf("item = {%q %q rev %d}, want {%q %q rev %d}", got.Key, got.Value, got.Revision, want.Key, want.Value, want.Revision)
	}
}

func keys(items []store.Item) []string {
	var ks []string
	for _, it := range items {
		ks = append(ks, it.Key)
	}
	return ks
}

// nextEvent returns the watcher's next event, failing the test if the
// watch ends or nothing arrives in time.
func nextEvent(t *testing.T, w store.Watcher) store.Event {
	t.Helper()
	select {
	case ev, ok := <-w.Events():
		if !ok {
			t.Fatalf("watch ended: %v", w.Err())
		}
		return ev
	case <-time.After(patience):
	}
	t.Fatalf("no event within %v", patience)
	return store.Event{}
}

// waitEnd drains the watcher until it ends and returns why it ended.
func waitEnd(t *testing.T, w store.Watcher) error {
	t.Helper()
	timeout := time.After(patience)
	for {
		select {
		case _, ok := <-w.Events():
			if !ok {
				return w.Err()
			}
		case <-timeout:
			t.Fatalf("watch did not end within %v", patience)
		}
	}
}

// parallel runs fn(0..n-1) concurrently and returns their errors by index.
func parallel(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = fn(i) })
	}
	wg.Wait()
	return errs
}

// increment returns an UpdateFunc adding one to the decimal counter
// under key.
func increment(key string) store.UpdateFunc {
	return func(cur *store.Item) (*store.Item, error) {
		n := 0
		if cur != nil {
			var err error
			if n, err = strconv.Atoi(string(cur.Value)); err != nil {
				return nil, err
			}
		}
		return &store.Item{Key: key, Value: strconv.AppendInt(nil, int64(n+1), 10)}, nil
	}
}
