package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// scanAll scans prefix and returns its items, the revision and the
// number of pages, failing the test if the pages disagree on the
// revision.
func scanAll(t *testing.T, s store.Store, prefix string) ([]store.Item, int64, int) {
	t.Helper()
	var (
		items []store.Item
		rev   int64
		pages int
	)
	err := s.Scan(t.Context(), prefix, func(r int64, page []store.Item) error {
		if pages > 0 && r != rev {
			return fmt.Errorf("page %d at revision %d, the first at %d", pages, r, rev)
		}
		rev, pages = r, pages+1
		items = append(items, page...)
		return nil
	})
	if err != nil {
		t.Fatalf("Scan(%q): %v", prefix, err)
	}
	return items, rev, pages
}

// testScan checks that Scan hands out what List returns, in key order,
// calls fn at least once, and stops at the first error fn returns.
func testScan(t *testing.T, s store.Store) {
	ctx := t.Context()
	if items, _, pages := scanAll(t, s, ""); len(items) != 0 || pages != 1 {
		t.Fatalf("Scan of an empty store: %d items in %d pages, want one empty page", len(items), pages)
	}
	for i := range 25 {
		// Written out of order, with keys just outside the prefix.
		mustPut(t, s, store.Item{Key: fmt.Sprintf("s/%02d", (i*7)%25), Value: fmt.Appendf(nil, "value %d", i)})
	}
	mustPut(t, s, store.Item{Key: "s", Value: []byte("outside")})
	mustPut(t, s, store.Item{Key: "t/1", Value: []byte("outside")})
	if err := s.Delete(ctx, "s/13"); err != nil {
		t.Fatal(err)
	}
	listed, listRev := mustList(t, s, "s/")
	scanned, rev, pages := scanAll(t, s, "s/")
	if rev < listRev { // the revision is store-wide: other writers may move it
		t.Errorf("Scan at revision %d, before the List before it at %d", rev, listRev)
	}
	if len(scanned) != 24 || len(scanned) != len(listed) {
		t.Fatalf("Scan gave %d items, List %d, want 24", len(scanned), len(listed))
	}
	for i, it := range scanned {
		if i > 0 && scanned[i-1].Key >= it.Key {
			t.Fatalf("not in key order: %q before %q", scanned[i-1].Key, it.Key)
		}
		assertItem(t, it, listed[i])
	}
	if _, _, pages := scanAll(t, s, "u/"); pages != 1 {
		t.Errorf("Scan of an empty prefix: %d pages, want one", pages)
	}

	if pages < 2 {
		t.Logf("the scan of %d items took one page: the early stop is not exercised", len(scanned))
	}
	stop := errors.New("stop here")
	calls := 0
	err := s.Scan(ctx, "s/", func(int64, []store.Item) error {
		calls++
		return stop
	})
	if err != stop {
		t.Errorf("Scan returned %v, want fn's error unchanged", err)
	}
	if calls != 1 {
		t.Errorf("fn called %d times after it failed the first", calls)
	}
}

// testScanIsOneSnapshot scans while writers add items, holding the scan
// until they wrote more: the scan is one snapshot (readAmidWrites), and
// the writes were not held up by it.
func testScanIsOneSnapshot(t *testing.T, s store.Store) {
	readAmidWrites(t, s, func(ctx context.Context, waitWrites func(int64) error) ([]store.Item, int64, error) {
		var (
			items []store.Item
			rev   int64
			pages int
		)
		err := s.Scan(ctx, "items/", func(r int64, page []store.Item) error {
			if pages == 0 { // hold the scan until the writers wrote more
				if err := waitWrites(20); err != nil {
					return fmt.Errorf("writes were held up by the scan: %w", err)
				}
			} else if r != rev {
				return fmt.Errorf("page %d at revision %d, the first at %d", pages, r, rev)
			}
			rev, pages = r, pages+1
			items = append(items, page...)
			return nil
		})
		return items, rev, err
	})
}

// testListIsOneSnapshot lists while writers add items: the listing, in
// as many pages as the backend takes, is one snapshot (readAmidWrites).
func testListIsOneSnapshot(t *testing.T, s store.Store) {
	readAmidWrites(t, s, func(ctx context.Context, waitWrites func(int64) error) ([]store.Item, int64, error) {
		items, rev, err := s.List(ctx, "items/")
		if err == nil {
			err = waitWrites(20) // so that a later listing has more
		}
		return items, rev, err
	})
}

// readAmidWrites reads "items/" with read while writers add items before
// and after the keys of the read's first page, and checks that the read
// is one snapshot: in key order, within its prefix, with every item
// acknowledged before it started and nothing written after its revision,
// the same items a later listing has up to that revision. waitWrites
// waits until the writers wrote n more items.
func readAmidWrites(t *testing.T, s store.Store, read func(ctx context.Context, waitWrites func(n int64) error) ([]store.Item, int64, error)) {
	ctx := t.Context()
	const before = 40
	for i := range before {
		mustPut(t, s, store.Item{Key: fmt.Sprintf("items/%04d", i), Value: []byte("v")})
	}
	mustPut(t, s, store.Item{Key: "itemsX", Value: []byte("outside the prefix")})
	stop := make(chan struct{})
	var written atomic.Int64
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stop)
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// Keys sorting before and after the first page's.
				for _, k := range []string{fmt.Sprintf("items/%04d-w%d-%d", i%before, w, i), fmt.Sprintf("items/~%d-%d", w, i)} {
					if _, err := s.Put(ctx, store.Item{Key: k, Value: []byte("new")}); err != nil {
						t.Error(err)
						return
					}
					written.Add(1)
				}
			}
		})
	}
	// waitWrites waits until the writers wrote n more items.
	waitWrites := func(n int64) error {
		for deadline, from := time.Now().Add(patience), written.Load(); written.Load() < from+n; {
			if time.Now().After(deadline) {
				return fmt.Errorf("%d writes in %v", written.Load()-from, patience)
			}
			time.Sleep(time.Millisecond)
		}
		return nil
	}
	if err := waitWrites(20); err != nil { // the scan starts amid writes
		t.Fatal(err)
	}
	items, rev, err := read(ctx, waitWrites)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, it := range items {
		if it.Revision > rev {
			t.Fatalf("%s has revision %d, after the read's %d", it.Key, it.Revision, rev)
		}
		if i > 0 && items[i-1].Key >= it.Key {
			t.Fatalf("not in key order: %s before %s", items[i-1].Key, it.Key)
		}
		seen[it.Key] = true
	}
	for i := range before {
		if k := fmt.Sprintf("items/%04d", i); !seen[k] {
			t.Fatalf("%s, written before the read, is missing", k)
		}
	}
	if seen["itemsX"] {
		t.Fatal("the read went past its prefix")
	}
	// Everything at or before rev is there, and nothing else: a listing
	// after the writes agrees on the items up to rev.
	all, _ := mustList(t, s, "items/")
	var want []string
	for _, it := range all {
		if it.Revision <= rev {
			want = append(want, it.Key)
		}
	}
	if got := keys(items); !slices.Equal(got, want) {
		t.Fatalf("the read at %d has %d items, the items up to %d are %d", rev, len(got), rev, len(want))
	}
	if len(all) == len(items) {
		t.Fatal("nothing was written during the read")
	}
	t.Logf("%d items read while %d writes went on", len(items), written.Load())
}
