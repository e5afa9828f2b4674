package bolt_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/bolt"
)

// snapshot copies the store file and its write-ahead log from dir as a
// crash would leave them: the store is open, changes since the last flush
// are in the log only. It returns the copy's store path.
func snapshot(t *testing.T, dir string, logTail []byte) string {
	t.Helper()
	dst := t.TempDir()
	for _, name := range []string{"gatehouse.db", "gatehouse.db.wal"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "gatehouse.db.wal" {
			b = append(b, logTail...)
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dst, "gatehouse.db")
}

// TestLogReplay checks that the changes held only in the log, puts,
// updates, expiries and deletes, are found after a crash with the same
// revisions, also with a torn record after the last whole one.
func TestLogReplay(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, filepath.Join(dir, "gatehouse.db"), unflushedOptions)
	ctx := t.Context()
	var want []store.Item
	for i := range 50 {
		it, err := s.Put(ctx, store.Item{Key: fmt.Sprintf("k/%02d", i), Value: bytes.Repeat([]byte{byte(i)}, i*10)})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, it)
	}
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	up, err := s.Update(ctx, "k/03", func(cur *store.Item) (*store.Item, error) {
		return &store.Item{Value: []byte("updated"), Expires: exp}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want[3] = up
	if err := s.Delete(ctx, "k/07"); err != nil {
		t.Fatal(err)
	}
	want = append(want[:7], want[8:]...)
	_, rev, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}

	// Every kind of tail the log may end with is in the wal package's
	// tests; here, one torn record after the last whole one.
	tails := map[string][]byte{
		"clean":        nil,
		"torn payload": {0, 0, 0, 40, 1, 2, 3, 4, 5},
	}
	for name, tail := range tails {
		t.Run(name, func(t *testing.T) {
			c := openStore(t, snapshot(t, dir, tail), testOptions)
			got, gotRev, err := c.List(t.Context(), "")
			if err != nil {
				t.Fatal(err)
			}
			if gotRev != rev || len(got) != len(want) {
				t.Fatalf("after replay: %d items at revision %d, want %d at %d", len(got), gotRev, len(want), rev)
			}
			for i := range want {
				g, w := got[i], want[i]
				if g.Key != w.Key || !bytes.Equal(g.Value, w.Value) || g.Revision != w.Revision || !g.Expires.Equal(w.Expires) {
					t.Fatalf("item %d after replay = %+v, want %+v", i, g, w)
				}
			}
			next, err := c.Put(t.Context(), store.Item{Key: "after", Value: []byte("x")})
			if err != nil || next.Revision != rev+1 {
				t.Fatalf("first write after replay: revision %d, %v; want %d", next.Revision, err, rev+1)
			}
		})
	}
}

// TestFlushCommitsFile checks that a flush commits the changes to the
// store file: a copy of the file alone, without the log, holds them.
func TestFlushCommitsFile(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, filepath.Join(dir, "gatehouse.db"), bolt.Options{FlushInterval: 10 * time.Millisecond})
	if _, err := s.Put(t.Context(), store.Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "gatehouse.db"))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "gatehouse.db")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := bolt.Open(path, bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		it, err := c.Get(t.Context(), "k")
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if err == nil && string(it.Value) == "v" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store file alone still lacks the write: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCleanCloseEmptiesLog checks that a clean close leaves an empty log.
func TestCleanCloseEmptiesLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s, err := bolt.Open(path, unflushedOptions)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), store.Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path + ".wal"); err != nil || fi.Size() == 0 {
		t.Fatalf("log before close: %v, %v; want the write in it", fi, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path + ".wal"); err != nil || fi.Size() != 0 {
		t.Fatalf("log after close: %v, %v; want empty", fi, err)
	}
}
