package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// OpenFunc opens the store kept in dir, failing t if it cannot. A new dir
// gives an empty store; reopening a dir after Close (or after the process
// that held it was killed) gives back the stored data. The store should
// be registered for Close with t.Cleanup; Close may then run twice.
type OpenFunc func(t *testing.T, dir string) store.Store

// RunPersistence checks that items, deletions and the revision counter
// survive closing and reopening the store, twice.
func RunPersistence(t *testing.T, open OpenFunc) {
	dir := t.TempDir()
	s := open(t, dir)
	ctx := t.Context()
	want := []store.Item{
		mustPut(t, s, store.Item{Key: "p/expiring", Value: []byte("e"), Expires: time.Now().Add(time.Hour)}),
		mustPut(t, s, store.Item{Key: "p/kept", Value: []byte("k")}),
	}
	mustPut(t, s, store.Item{Key: "p/updated", Value: []byte("1")})
	updated, err := s.Update(ctx, "p/updated", func(cur *store.Item) (*store.Item, error) {
		return &store.Item{Key: "p/updated", Value: append(cur.Value, '2')}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, updated)
	mustPut(t, s, store.Item{Key: "p/deleted", Value: []byte("d")})
	if err := s.Delete(ctx, "p/deleted"); err != nil {
		t.Fatal(err)
	}
	_, rev := mustList(t, s, "")

	for round := range 2 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		s = open(t, dir)
		items, reopened := mustList(t, s, "p/")
		if !slices.Equal(keys(items), keys(want)) {
			t.Fatalf("round %d: keys after reopen = %q, want %q", round, keys(items), keys(want))
		}
		for i, it := range items {
			assertItem(t, it, want[i])
		}
		if d := items[0].Expires.Sub(want[0].Expires).Abs(); d > time.Second {
			t.Errorf("round %d: Expires after reopen = %v, want %v", round, items[0].Expires, want[0].Expires)
		}
		if reopened < rev {
			t.Fatalf("round %d: revision after reopen = %d, want >= %d", round, reopened, rev)
		}
		if _, err := s.Get(ctx, "p/deleted"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("round %d: deleted item after reopen: err = %v, want ErrNotFound", round, err)
		}
		w := mustWatch(t, ctx, s, "p/", reopened+1)
		next := mustPut(t, s, store.Item{Key: "p/kept", Value: []byte("k")})
		if next.Revision <= reopened {
			t.Fatalf("round %d: revision of a write after reopen = %d, want > %d", round, next.Revision, reopened)
		}
		if got := changeOf(nextEvent(t, w)); got != putChange(next) {
			t.Fatalf("round %d: event after reopen = %+v, want %+v", round, got, putChange(next))
		}
		want[1] = next
		_, rev = mustList(t, s, "")
	}
}
