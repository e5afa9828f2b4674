package bolt

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// TestFailedWriteReplaysLog checks that a write failing after it modified
// the open transaction rolls back only itself: the transaction is rebuilt
// from the log, so writes acknowledged before it (since the last flush)
// and writes committed with it survive, in the store and after a reopen.
func TestFailedWriteReplaysLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	opts := Options{FlushInterval: time.Hour}
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	before, err := s.Put(ctx, store.Item{Key: "before", Value: []byte("1")})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make([]error, 9)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 0 {
				errs[i] = s.write(ctx, func(w *writeTx) error {
					if _, err := w.set(store.Item{Key: "bad", Value: []byte("x")}); err != nil {
						return err
					}
					return boom
				})
				return
			}
			_, errs[i] = s.Put(ctx, store.Item{Key: fmt.Sprint("good/", i), Value: []byte("v")})
		}()
	}
	wg.Wait()
	if !errors.Is(errs[0], boom) {
		t.Fatalf("failing write returned %v, want %v", errs[0], boom)
	}
	for _, err := range errs[1:] {
		if err != nil {
			t.Fatalf("write committed with the failing one: %v", err)
		}
	}
	check := func(s *Store, when string) {
		t.Helper()
		items, rev, err := s.List(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, it := range items {
			keys = append(keys, it.Key)
		}
		want := "[before good/1 good/2 good/3 good/4 good/5 good/6 good/7 good/8]"
		if fmt.Sprint(keys) != want || rev != before.Revision+8 {
			t.Fatalf("%s: keys %v at revision %d, want %s at %d", when, keys, rev, want, before.Revision+8)
		}
	}
	check(s, "after the failed write")
	if _, err := s.Put(ctx, store.Item{Key: "good/9", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "good/9"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	items, rev, err := s.List(ctx, "")
	if err != nil || len(items) != 9 || rev != before.Revision+10 {
		t.Fatalf("after reopening: %d items at revision %d, %v; want 9 at %d", len(items), rev, err, before.Revision+10)
	}
}
