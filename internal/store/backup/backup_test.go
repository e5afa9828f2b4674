package backup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
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

	h, items, err := backup.Snapshot(ctx, src, "bolt", "test")
	if err != nil {
		t.Fatal(err)
	}
	if h.Revision != int64(len(want)) || h.Backend != "bolt" || len(items) != len(want) {
		t.Fatalf("header %+v with %d items", h, len(items))
	}
	var buf bytes.Buffer
	if err := backup.Write(&buf, h, items); err != nil {
		t.Fatal(err)
	}
	gotH, got, err := backup.Read(bytes.NewReader(buf.Bytes()))
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
	var buf bytes.Buffer
	if err := backup.Write(&buf, backup.Header{Backend: "etcd"}, nil); err != nil {
		t.Fatal(err)
	}
	h, items, err := backup.Read(&buf)
	if err != nil || len(items) != 0 || h.Backend != "etcd" {
		t.Fatalf("%+v %v %v", h, items, err)
	}
}

// TestDamageRefused: every truncation and every changed byte of a
// backup is refused.
func TestDamageRefused(t *testing.T) {
	var buf bytes.Buffer
	if err := backup.Write(&buf, backup.Header{Backend: "bolt", Revision: 9}, sample(time.Now())[:6]); err != nil {
		t.Fatal(err)
	}
	file := buf.Bytes()
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
