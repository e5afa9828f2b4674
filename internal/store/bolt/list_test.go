package bolt

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// TestLargeListing checks a listing of more than listChunk items, which
// collects them in chunks and copies keys and values into blocks: every
// item in order, flushed or not, with values the caller may append to
// without changing another item.
func TestLargeListing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s, err := Open(path, Options{FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	const n = 3*listChunk + 17
	value := func(i int) string { return strings.Repeat(fmt.Sprint(i%10), 1+i%300) }
	key := func(i int) string { return fmt.Sprintf("big/%06d", i) }
	write := func(from, step int) {
		t.Helper()
		err := s.write(t.Context(), func(w *writeTx) error {
			for i := from; i < n; i += step {
				if _, err := w.set(store.Item{Key: key(i), Value: []byte(value(i))}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	write(0, 2)
	if err := s.Close(); err != nil { // the even items go to the bbolt file
		t.Fatal(err)
	}
	if s, err = Open(path, Options{FlushInterval: time.Hour}); err != nil {
		t.Fatal(err)
	}
	write(1, 2) // the odd items stay in the log and the overlay
	items, _, err := s.List(t.Context(), "big/")
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != n {
		t.Fatalf("listed %d items, want %d", len(items), n)
	}
	for i := range items {
		items[i].Value = append(items[i].Value, 'x')
	}
	for i, it := range items {
		if it.Key != key(i) || string(it.Value) != value(i)+"x" {
			t.Fatalf("item %d: %q = %q, want %q = %q", i, it.Key, it.Value, key(i), value(i)+"x")
		}
	}
}
