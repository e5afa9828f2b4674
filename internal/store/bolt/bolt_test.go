package bolt_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/bolt"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/testclock"
)

// testOptions sweep often so expiry tests finish quickly.
var testOptions = bolt.Options{SweepInterval: 20 * time.Millisecond}

func openStore(tb testing.TB, path string, opts bolt.Options) *bolt.Store {
	tb.Helper()
	s, err := bolt.Open(path, opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

func newStore(tb testing.TB, opts bolt.Options) *bolt.Store {
	return openStore(tb, filepath.Join(tb.TempDir(), "gatehouse.db"), opts)
}

// unflushedOptions keep every change in the write-ahead log and the
// overlay until the store is closed.
var unflushedOptions = bolt.Options{SweepInterval: 20 * time.Millisecond, FlushInterval: time.Hour}

func openDir(t *testing.T, dir string) store.Store {
	return openStore(t, filepath.Join(dir, "gatehouse.db"), testOptions)
}

func openDirUnflushed(t *testing.T, dir string) store.Store {
	return openStore(t, filepath.Join(dir, "gatehouse.db"), unflushedOptions)
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return newStore(t, testOptions) })
}

// TestConformanceUnflushed runs the conformance suite with reads served
// from the overlay of changes not yet committed to the bbolt file.
func TestConformanceUnflushed(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return newStore(t, unflushedOptions) })
}

func TestPersistence(t *testing.T) {
	storetest.RunPersistence(t, openDir)
}

func TestCrash(t *testing.T) {
	storetest.RunCrash(t, openDir)
}

// TestCrashUnflushed kills writers whose acknowledged writes are in the
// write-ahead log only: opening the store must replay them.
func TestCrashUnflushed(t *testing.T) {
	storetest.RunCrash(t, openDirUnflushed)
}

func TestSecondOpenerFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	openStore(t, path, testOptions)
	_, err := bolt.Open(path, bolt.Options{LockTimeout: 50 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("second Open: err = %v, want a lock error", err)
	}
}

func TestEmptyKeyRefused(t *testing.T) {
	s := newStore(t, testOptions)
	if _, err := s.Put(t.Context(), store.Item{Value: []byte("v")}); err == nil {
		t.Fatal("Put with an empty key succeeded")
	}
	if _, rev, err := s.List(t.Context(), ""); err != nil || rev != 0 {
		t.Fatalf("List after refused Put: revision %d, err %v; want 0, nil", rev, err)
	}
}

func TestSlowWatcherIsLost(t *testing.T) {
	s := newStore(t, bolt.Options{WatchBuffer: 2})
	w, err := s.Watch(t.Context(), "", 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := s.Put(t.Context(), store.Item{Key: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	var got int
	for range w.Events() {
		got++
	}
	if got != 2 || !errors.Is(w.Err(), store.ErrWatchLost) {
		t.Fatalf("slow watcher got %d events and Err %v, want 2 and ErrWatchLost", got, w.Err())
	}
}

func TestWatchHistoryLimit(t *testing.T) {
	s := newStore(t, bolt.Options{History: 4})
	for i := range 10 {
		if _, err := s.Put(t.Context(), store.Item{Key: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		from    int64
		wantErr error
	}{
		{0, store.ErrCompacted},
		{1, store.ErrCompacted},
		{6, store.ErrCompacted},
		{7, nil},
		{10, nil},
		{11, nil},
		{100, nil},
	}
	for _, tc := range tests {
		ctx, cancel := context.WithCancel(t.Context())
		w, err := s.Watch(ctx, "", tc.from)
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("Watch from %d: err = %v, want %v", tc.from, err, tc.wantErr)
		}
		if err == nil {
			if got, want := len(w.Events()), int(max(0, 11-tc.from)); got != want {
				t.Errorf("Watch from %d replayed %d events, want %d", tc.from, got, want)
			}
		}
		cancel()
	}
}

func TestReopenCompactsHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s := openStore(t, path, testOptions)
	for i := range 3 {
		if _, err := s.Put(t.Context(), store.Item{Key: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, path, testOptions)
	if _, err := s.Watch(t.Context(), "", 3); !errors.Is(err, store.ErrCompacted) {
		t.Errorf("Watch from before reopen: err = %v, want ErrCompacted", err)
	}
	if _, err := s.Watch(t.Context(), "", 4); err != nil {
		t.Errorf("Watch from the next revision: %v", err)
	}
}

// TestExpiredIsInvisibleBeforeSweep checks every operation against an
// expired item that the sweeper has not deleted yet.
func TestExpiredIsInvisibleBeforeSweep(t *testing.T) {
	c := testclock.New(time.Unix(1_800_000_000, 0))
	s := newStore(t, bolt.Options{SweepInterval: time.Hour, Now: c.Now})
	ctx := t.Context()
	it, err := s.Put(ctx, store.Item{Key: "k", Value: []byte("v"), Expires: c.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "k"); err != nil {
		t.Fatalf("Get before expiry: %v", err)
	}
	c.Advance(time.Minute)

	if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get: err = %v, want ErrNotFound", err)
	}
	if items, _, err := s.List(ctx, ""); err != nil || len(items) != 0 {
		t.Errorf("List = %v, %v; want nothing", items, err)
	}
	if _, err := s.CompareAndSwap(ctx, it.Revision, store.Item{Key: "k"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CompareAndSwap: err = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Delete: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Create(ctx, store.Item{Key: "k", Value: []byte("new")}); err != nil {
		t.Errorf("Create over the expired item: %v", err)
	}
}

// TestSweepSparesOverwrittenExpiry checks that replacing an expiring item
// with a lasting one drops its expiry: the sweeper, which deletes due
// items in expiry order, deletes a later item but not the replaced one.
func TestSweepSparesOverwrittenExpiry(t *testing.T) {
	c := testclock.New(time.Unix(1_800_000_000, 0))
	s := newStore(t, bolt.Options{SweepInterval: 5 * time.Millisecond, Now: c.Now})
	ctx := t.Context()
	puts := []store.Item{
		{Key: "replaced", Expires: c.Now().Add(time.Minute)},
		{Key: "replaced", Value: []byte("lasting")},
		{Key: "expiring", Expires: c.Now().Add(2 * time.Minute)},
	}
	for _, it := range puts {
		if _, err := s.Put(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	_, rev, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Watch(ctx, "", rev+1)
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(3 * time.Minute)
	select {
	case ev := <-w.Events():
		if ev.Type != store.EventDelete || ev.Item.Key != "expiring" || ev.Item.Revision != rev+1 {
			t.Fatalf("event %+v, want the deletion of expiring at revision %d", ev, rev+1)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("expired item was not swept")
	}
	if it, err := s.Get(ctx, "replaced"); err != nil || string(it.Value) != "lasting" {
		t.Fatalf("Get(replaced) = %+v, %v; want the lasting item", it, err)
	}
}

func BenchmarkUpdate(b *testing.B) {
	for _, shared := range []bool{false, true} {
		b.Run(fmt.Sprintf("shared=%t", shared), func(b *testing.B) {
			s := newStore(b, bolt.Options{})
			var writers atomic.Int64
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				key := "counter"
				if !shared {
					key = fmt.Sprintf("counter/%d", writers.Add(1))
				}
				for pb.Next() {
					if _, err := s.Update(context.Background(), key, increment(key)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkCAS(b *testing.B) {
	s := newStore(b, bolt.Options{})
	var writers atomic.Int64
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		it, err := s.Put(ctx, store.Item{Key: fmt.Sprintf("cas/%d", writers.Add(1)), Value: []byte("0")})
		if err != nil {
			b.Error(err)
			return
		}
		for pb.Next() {
			if it, err = s.CompareAndSwap(ctx, it.Revision, it); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func increment(key string) store.UpdateFunc {
	return func(cur *store.Item) (*store.Item, error) {
		n := 0
		if cur != nil {
			n, _ = strconv.Atoi(string(cur.Value))
		}
		return &store.Item{Key: key, Value: strconv.AppendInt(nil, int64(n+1), 10)}, nil
	}
}

// TestFailedWriteLeavesOthers checks that a write failing after it
// modified the transaction it shares with others (a key over bbolt's
// limit) fails alone: the concurrent writes committed with it succeed.
func TestFailedWriteLeavesOthers(t *testing.T) {
	s := newStore(t, testOptions)
	ctx := t.Context()
	if _, err := s.Put(ctx, store.Item{Key: strings.Repeat("k", 40000), Value: []byte("v")}); err == nil {
		t.Fatal("Put with an oversized key succeeded")
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("good/%d", i)
			if i%8 == 0 {
				key = strings.Repeat("k", 40000)
			}
			_, err := s.Put(ctx, store.Item{Key: key, Value: []byte("v"), Expires: time.Now().Add(time.Hour)})
			if (err == nil) != (i%8 != 0) {
				errs <- fmt.Errorf("write %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	items, _, err := s.List(ctx, "")
	if err != nil || len(items) != 56 {
		t.Fatalf("listed %d items, %v; want the 56 good ones", len(items), err)
	}
	for i, it := range items {
		if i > 0 && it.Revision == items[i-1].Revision {
			t.Fatalf("two items share revision %d", it.Revision)
		}
	}
}
