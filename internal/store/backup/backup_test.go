package backup_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/backup"
	"github.com/gatehouse/gatehouse/internal/store/bolt"
)

func openBolt(t *testing.T, opts bolt.Options) *bolt.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "gatehouse.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// sample is a store's worth of items: some with an expiry, one empty value.
func sample(now time.Time) []store.Item {
	var items []store.Item
	for i := range 50 {
		it := store.Item{Key: fmt.Sprintf("k/%03d", i), Value: bytes.Repeat([]byte{byte(i)}, i*7)}
		if i%5 == 0 {
			it.Expires = now.Add(time.Duration(i+1) * time.Hour)
		}
		items = append(items, it)
	}
	return items
}

func put(t *testing.T, st store.Store, items []store.Item) {
	t.Helper()
	for _, it := range items {
		if _, err := st.Put(context.Background(), it); err != nil {
			t.Fatal(err)
		}
	}
}

// write returns the backup of items described by h.
func write(t *testing.T, h backup.Header, items []store.Item) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := backup.NewWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if err := w.Add(it); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// snapshot returns the backup of st and its header.
func snapshot(t *testing.T, st store.Store) (backup.Header, []byte) {
	t.Helper()
	var buf bytes.Buffer
	h, err := backup.Snapshot(t.Context(), st, "bolt", "test", func(backup.Header) (io.Writer, error) { return &buf, nil })
	if err != nil {
		t.Fatal(err)
	}
	return h, buf.Bytes()
}

// same reports whether a and b hold the same keys, values and expiries.
func same(a, b []store.Item) bool {
	return slices.EqualFunc(a, b, func(x, y store.Item) bool {
		return x.Key == y.Key && bytes.Equal(x.Value, y.Value) && x.Expires.Equal(y.Expires)
	})
}

// TestRoundTrip: a snapshot written and read back restores the same
// items into another store. The source never flushes its write-ahead log
// into the bbolt file during the test, so the snapshot must take the
// acknowledged writes from the log's overlay.
func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	src := openBolt(t, bolt.Options{FlushInterval: time.Hour})
	want := sample(now)
	put(t, src, want)

	h, file := snapshot(t, src)
	if h.Revision != int64(len(want)) || h.Backend != "bolt" || h.Items != len(want) {
		t.Fatalf("header %+v", h)
	}
	gotH, got, err := backup.Read(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if gotH.Revision != h.Revision || gotH.Items != len(want) || gotH.Version != "test" || !gotH.Created.Equal(h.Created) {
		t.Errorf("header %+v, wrote %+v", gotH, h)
	}
	if !same(got, want) {
		t.Fatalf("read back %d items, not those written", len(got))
	}

	dst := openBolt(t, bolt.Options{})
	res, err := backup.Restore(ctx, dst, got, false, now)
	if err != nil || res.Restored != len(want) {
		t.Fatalf("restore: %+v %v", res, err)
	}
	restored, _, err := dst.List(ctx, "")
	if err != nil || !same(restored, want) {
		t.Fatalf("restored store differs: %v", err)
	}
}

// TestEmptyStore: a store without items backs up and restores.
func TestEmptyStore(t *testing.T) {
	h, items, err := backup.Read(bytes.NewReader(write(t, backup.Header{Backend: "etcd"}, nil)))
	if err != nil || len(items) != 0 || h.Backend != "etcd" {
		t.Fatalf("%+v %v %v", h, items, err)
	}
	_, file := snapshot(t, openBolt(t, bolt.Options{}))
	if h, items, err = backup.Read(bytes.NewReader(file)); err != nil || len(items) != 0 || h.Backend != "bolt" {
		t.Fatalf("snapshot of an empty store: %+v %v %v", h, items, err)
	}
}

// TestFormat1: a backup in format 1 (written by Gatehouse before backups
// were streamed, with the item count in its header) reads and restores.
func TestFormat1(t *testing.T) {
	raw, err := os.ReadFile("testdata/format1.backup")
	if err != nil {
		t.Fatal(err)
	}
	h, items, err := backup.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 12, 4, 13, 0, 0, 0, time.UTC)
	if h.Backend != "bolt" || h.Revision != 42 || h.Version != "v1.0.0" || h.Items != 4 || !h.Created.Equal(created) {
		t.Errorf("header %+v", h)
	}
	want := []store.Item{
		{Key: "accounts/root", Value: []byte(`{"name":"root"}`)},
		{Key: "empty", Value: []byte{}},
		{Key: "sessions/a", Value: bytes.Repeat([]byte{7}, 300), Expires: time.Date(2099, 1, 2, 3, 4, 5, 6, time.UTC)},
		{Key: "sessions/b", Value: []byte("b"), Expires: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	if !same(items, want) {
		t.Fatalf("items %+v", items)
	}
	dst := openBolt(t, bolt.Options{})
	res, err := backup.Restore(t.Context(), dst, items, false, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || res.Restored != 3 || res.Expired != 1 {
		t.Fatalf("restore: %+v %v", res, err)
	}
	restored, _, err := dst.List(t.Context(), "")
	if err != nil || !same(restored, want[:3]) {
		t.Fatalf("restored %d items: %v", len(restored), err)
	}
	// The count in a format 1 header is checked too.
	bad := bytes.Replace(raw, []byte(`"items":4`), []byte(`"items":5`), 1)
	bad = append(bad[:len(bad)-32], sha(bad[:len(bad)-32])...)
	if _, _, err := backup.Read(bytes.NewReader(bad)); !errors.Is(err, backup.ErrInvalid) {
		t.Errorf("a format 1 header with the wrong count: %v", err)
	}
}

func sha(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

// countingStore counts the items its store handed out.
type countingStore struct {
	store.Store
	read atomic.Int64
}

func (c *countingStore) List(ctx context.Context, prefix string) ([]store.Item, int64, error) {
	items, rev, err := c.Store.List(ctx, prefix)
	c.read.Add(int64(len(items)))
	return items, rev, err
}

func (c *countingStore) Scan(ctx context.Context, prefix string, fn store.ScanFunc) error {
	return c.Store.Scan(ctx, prefix, func(rev int64, page []store.Item) error {
		c.read.Add(int64(len(page)))
		return fn(rev, page)
	})
}

// writeFunc is an io.Writer.
type writeFunc func([]byte) (int, error)

func (f writeFunc) Write(b []byte) (int, error) { return f(b) }

// TestSnapshotStreams: a snapshot of a store much larger than a page
// writes the backup while it reads the store, never more than a few
// pages of items ahead of what it wrote, so its memory does not grow
// with the store.
func TestSnapshotStreams(t *testing.T) {
	const n, size = 20000, 512
	src := openBolt(t, bolt.Options{})
	value := bytes.Repeat([]byte("v"), size)
	for i := 0; i < n; i += 1000 { // concurrent writes commit together
		var wg sync.WaitGroup
		for j := i; j < i+1000; j++ {
			wg.Go(func() {
				if _, err := src.Put(t.Context(), store.Item{Key: fmt.Sprintf("s/%06d", j), Value: value}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	st := &countingStore{Store: src}
	var (
		out      bytes.Buffer
		ahead    int64 // the most items read beyond those written
		reads    []int64
		opened   bool
		readOpen int64
	)
	h, err := backup.Snapshot(t.Context(), st, "bolt", "test", func(backup.Header) (io.Writer, error) {
		opened, readOpen = true, st.read.Load()
		return writeFunc(func(b []byte) (int, error) {
			out.Write(b)
			read := st.read.Load()
			reads = append(reads, read)
			written := int64(out.Len() / (1 + 4 + 8 + 8 + 4 + size)) // a record: tag, key length, key, expiry, value length, value
			ahead = max(ahead, read-written)
			return len(b), nil
		}), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !opened || readOpen >= n {
		t.Fatalf("the backup was opened after %d of %d items were read", readOpen, n)
	}
	if h.Items != n {
		t.Fatalf("header %+v", h)
	}
	if _, items, err := backup.Read(bytes.NewReader(out.Bytes())); err != nil || len(items) != n {
		t.Fatalf("read back %d items: %v", len(items), err)
	}
	// Pages of bolt's scan hold at most 1024 items or 1 MiB of values.
	if limit := int64(3 * 1024); ahead > limit {
		t.Errorf("the snapshot read up to %d items beyond those it wrote, want at most %d (writes saw %v items read)", ahead, limit, reads[:min(len(reads), 10)])
	}
}

// TestSnapshotStoreError: a store that cannot be read fails the snapshot
// before anything is written.
func TestSnapshotStoreError(t *testing.T) {
	st := openBolt(t, bolt.Options{})
	st.Close()
	_, err := backup.Snapshot(t.Context(), st, "bolt", "test", func(backup.Header) (io.Writer, error) {
		t.Error("the backup was opened")
		return io.Discard, nil
	})
	if !errors.Is(err, store.ErrClosed) {
		t.Fatalf("snapshot of a closed store: %v", err)
	}
}

// TestDamageRefused: every truncation and every changed byte of a
// backup is refused.
func TestDamageRefused(t *testing.T) {
	file := write(t, backup.Header{Backend: "bolt", Revision: 9}, sample(time.Now())[:6])
	for n := range len(file) {
		if _, _, err := backup.Read(bytes.NewReader(file[:n])); !errors.Is(err, backup.ErrInvalid) {
			t.Fatalf("truncated to %d of %d bytes: %v", n, len(file), err)
		}
	}
	for i := range file {
		bad := bytes.Clone(file)
		bad[i] ^= 0x20
		if _, _, err := backup.Read(bytes.NewReader(bad)); !errors.Is(err, backup.ErrInvalid) {
			t.Fatalf("byte %d changed: %v", i, err)
		}
	}
	if _, _, err := backup.Read(bytes.NewReader(append(bytes.Clone(file), 0))); !errors.Is(err, backup.ErrInvalid) {
		t.Fatalf("trailing byte: %v", err)
	}
	if _, _, err := backup.Read(bytes.NewReader(file[:len(file)-1])); !errors.Is(err, backup.ErrTruncated) {
		t.Errorf("a file cut before its end: %v, want ErrTruncated", err)
	}
	bad := bytes.Clone(file)
	bad[len(bad)-1] ^= 1
	if _, _, err := backup.Read(bytes.NewReader(bad)); !errors.Is(err, backup.ErrChecksum) {
		t.Errorf("changed checksum: %v, want ErrChecksum", err)
	}
}

// TestRestoreTarget: a store with items is refused unless replace, which
// leaves exactly the backup's items; expired items are not restored.
func TestRestoreTarget(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	dst := openBolt(t, bolt.Options{})
	put(t, dst, []store.Item{{Key: "old/1", Value: []byte("x")}, {Key: "k/000", Value: []byte("y")}})
	want := sample(now)
	if _, err := backup.Restore(ctx, dst, want, false, now); !errors.Is(err, backup.ErrNotEmpty) {
		t.Fatalf("non-empty target: %v", err)
	}
	if items, _, _ := dst.List(ctx, ""); len(items) != 2 {
		t.Fatalf("the refused restore changed the target: %d items", len(items))
	}
	later := now.Add(3 * time.Hour) // k/000 expires after 1h, the other expiring items later
	res, err := backup.Restore(ctx, dst, want, true, later)
	if err != nil {
		t.Fatal(err)
	}
	var live []store.Item
	for _, it := range want {
		if !it.Expired(later) {
			live = append(live, it)
		}
	}
	if res.Replaced != 2 || res.Expired != len(want)-len(live) || res.Restored != len(live) || res.Expired == 0 {
		t.Errorf("result %+v", res)
	}
	got, _, err := dst.List(ctx, "")
	if err != nil || !same(got, live) {
		t.Fatalf("target after replace: %d items, %v", len(got), err)
	}
}
