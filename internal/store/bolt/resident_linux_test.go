package bolt

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/gatehouse/gatehouse/internal/store"
)

// TestOpenAndListReleaseFilePages checks that the pages of the bbolt file
// walked by opening the store (which rebuilds the free list) and by a
// listing of a large prefix do not stay in the process's resident memory,
// and that the items read remain intact.
func TestOpenAndListReleaseFilePages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 4 * releaseAfter
	value := []byte(strings.Repeat("v", 200))
	err = s.write(t.Context(), func(w *writeTx) error {
		for i := range n {
			if _, err := w.set(store.Item{Key: fmt.Sprintf("big/%06d", i), Value: value}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// Within a quarter of the file: the pages read again by the checks
	// below (meta, roots) and any a concurrent sweep touches.
	limit := fi.Size() / 4

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if rss := mappedRSS(t, path); rss > limit {
		t.Errorf("after open: %d bytes of the %d-byte file resident, want at most %d", rss, fi.Size(), limit)
	}
	items, _, err := s.List(t.Context(), "big/")
	if err != nil {
		t.Fatal(err)
	}
	if rss := mappedRSS(t, path); rss > limit {
		t.Errorf("after listing: %d bytes of the %d-byte file resident, want at most %d", rss, fi.Size(), limit)
	}
	if len(items) != n {
		t.Fatalf("listed %d items, want %d", len(items), n)
	}
	for i, it := range items {
		if want := fmt.Sprintf("big/%06d", i); it.Key != want || string(it.Value) != string(value) {
			t.Fatalf("item %d: %q = %q, want %q = %q", i, it.Key, it.Value, want, value)
		}
	}
}

// mappedRSS returns the resident bytes of the process's maps of the file
// at path, from /proc/self/smaps.
func mappedRSS(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip("no /proc/self/smaps:", err)
	}
	defer f.Close()
	var total int64
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if fields := strings.Fields(line); len(fields) >= 5 && strings.Contains(fields[0], "-") {
			in = len(fields) >= 6 && fields[len(fields)-1] == path
			continue
		}
		if rest, ok := strings.CutPrefix(line, "Rss:"); ok && in {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			total += kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return total
}

// TestFlushReleasesFilePages checks that a flush releases the file's
// pages that reads and writes mapped since the last release.
func TestFlushReleasesFilePages(t *testing.T) {
	every := releaseEvery
	releaseEvery = 0
	t.Cleanup(func() { releaseEvery = every })
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s, err := Open(path, Options{FlushInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	value := []byte(strings.Repeat("v", 200))
	err = s.write(t.Context(), func(w *writeTx) error {
		for i := range 4 * releaseAfter {
			if _, err := w.set(store.Item{Key: fmt.Sprintf("big/%06d", i), Value: value}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the writes are flushed", func() bool {
		s.over.mu.RLock()
		defer s.over.mu.RUnlock()
		return len(s.over.last) == 0
	})
	// Read every page, as writes to keys spread over the file do.
	err = s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(itemsBucket).ForEach(func(k, v []byte) error { return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// In a map larger than the file (see mapSize) a read maps fewer pages
	// around the one it faults.
	if rss := mappedRSS(t, path); rss < fi.Size()/8 {
		t.Fatalf("reading every item mapped only %d bytes of the %d-byte file", rss, fi.Size())
	}
	if _, err := s.Put(t.Context(), store.Item{Key: "one", Value: value}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the flush releases the file's pages", func() bool { return mappedRSS(t, path) <= fi.Size()/16 })
}

// waitUntil waits (at most 10 s) until cond holds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
