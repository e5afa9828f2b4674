package store_test

import (
	"context"
	"errors"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/bolt"
)

// patience bounds every wait of these tests.
const patience = 10 * time.Second

func newStore(t *testing.T, opts bolt.Options) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "gatehouse.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// view is a Handler keeping a map of key to value. It fails the test if
// it is called concurrently. When gate is set, the first Apply signals
// entered and waits for gate to close.
type view struct {
	t       *testing.T
	busy    atomic.Bool
	gate    chan struct{}
	entered chan struct{}

	mu      sync.Mutex
	items   map[string]string
	resets  int
	applied int
}

func newView(t *testing.T) *view { return &view{t: t, items: map[string]string{}} }

func (v *view) enter() {
	if !v.busy.CompareAndSwap(false, true) {
		v.t.Error("handler called concurrently")
	}
}

func (v *view) Reset(items []store.Item) {
	v.enter()
	defer v.busy.Store(false)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.resets++
	v.items = map[string]string{}
	for _, it := range items {
		v.items[it.Key] = string(it.Value)
	}
}

func (v *view) Apply(ev store.Event) {
	v.enter()
	defer v.busy.Store(false)
	if v.gate != nil {
		close(v.entered)
		<-v.gate
		v.gate = nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.applied++
	switch ev.Type {
	case store.EventPut:
		v.items[ev.Item.Key] = string(ev.Item.Value)
	case store.EventDelete:
		delete(v.items, ev.Item.Key)
	}
}

func (v *view) snapshot() (map[string]string, int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return maps.Clone(v.items), v.resets
}

func (v *view) appliedCount() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.applied
}

// contents returns what s holds under prefix, as a view would.
func contents(t *testing.T, s store.Store, prefix string) (map[string]string, int64) {
	t.Helper()
	items, rev, err := s.List(t.Context(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, it := range items {
		m[it.Key] = string(it.Value)
	}
	return m, rev
}

func follow(t *testing.T, s store.Store, prefix string, h store.Handler) *store.Follower {
	t.Helper()
	f, err := store.Follow(t.Context(), s, prefix, h)
	if err != nil {
		t.Fatalf("Follow: %v", err)
	}
	t.Cleanup(f.Stop)
	return f
}

func waitFor(t *testing.T, f *store.Follower, rev int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), patience)
	defer cancel()
	if err := f.WaitFor(ctx, rev); err != nil {
		t.Fatalf("WaitFor(%d): %v (at %d)", rev, err, f.Revision())
	}
}

func put(t *testing.T, s store.Store, key, value string) int64 {
	t.Helper()
	it, err := s.Put(t.Context(), store.Item{Key: key, Value: []byte(value)})
	if err != nil {
		t.Fatal(err)
	}
	return it.Revision
}

func TestFollowAppliesChanges(t *testing.T) {
	s := newStore(t, bolt.Options{})
	ctx := t.Context()
	put(t, s, "acct/1", "one")
	put(t, s, "acct/2", "two")
	put(t, s, "role/1", "other prefix")
	v := newView(t)
	f := follow(t, s, "acct/", v)
	want, rev := contents(t, s, "acct/")
	if got, _ := v.snapshot(); !maps.Equal(got, want) {
		t.Fatalf("view after Follow = %v, want %v", got, want)
	}
	if f.Revision() != rev || !f.Healthy() {
		t.Fatalf("after Follow: Revision %d, Healthy %t; want %d, true", f.Revision(), f.Healthy(), rev)
	}

	writes := []struct {
		name  string
		write func() int64
	}{
		{"put", func() int64 { return put(t, s, "acct/3", "three") }},
		{"update", func() int64 {
			it, err := s.Update(ctx, "acct/1", func(cur *store.Item) (*store.Item, error) {
				return &store.Item{Key: "acct/1", Value: append(cur.Value, '!')}, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			return it.Revision
		}},
		{"delete", func() int64 {
			if err := s.Delete(ctx, "acct/2"); err != nil {
				t.Fatal(err)
			}
			_, rev := contents(t, s, "")
			return rev
		}},
		{"outside the prefix then inside", func() int64 {
			put(t, s, "role/2", "other prefix")
			return put(t, s, "acct/4", "four")
		}},
	}
	for _, w := range writes {
		waitFor(t, f, w.write())
		want, _ := contents(t, s, "acct/")
		if got, _ := v.snapshot(); !maps.Equal(got, want) {
			t.Fatalf("%s: view = %v, want %v", w.name, got, want)
		}
	}
	if _, resets := v.snapshot(); resets != 1 {
		t.Errorf("Reset called %d times, want once", resets)
	}
}

func TestFollowRelistsAfterLostWatch(t *testing.T) {
	s := newStore(t, bolt.Options{WatchBuffer: 1})
	v := newView(t)
	v.gate, v.entered = make(chan struct{}), make(chan struct{})
	f := follow(t, s, "k/", v)

	put(t, s, "k/0", "0")
	<-v.entered // the follower is stuck in Apply while the writes below overflow its watch
	var last int64
	for i := 1; i < 10; i++ {
		last = put(t, s, "k/"+strconv.Itoa(i), strconv.Itoa(i))
	}
	close(v.gate)
	waitFor(t, f, last)
	want, _ := contents(t, s, "k/")
	got, resets := v.snapshot()
	if !maps.Equal(got, want) || resets != 2 {
		t.Fatalf("view = %v after %d resets, want %v after 2", got, resets, want)
	}
	waitFor(t, f, put(t, s, "k/after", "x")) // delivered by the new watch
	if !f.Healthy() {
		t.Error("follower unhealthy after it recovered")
	}
}

// flakyStore fails chosen calls of List and Watch with ErrUnavailable.
type flakyStore struct {
	store.Store
	mu      sync.Mutex
	calls   map[string]int
	failing map[string][]int // call numbers, from 1, that fail
}

func (s *flakyStore) fail(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[op]++
	if slices.Contains(s.failing[op], s.calls[op]) {
		return store.ErrUnavailable
	}
	return nil
}

func (s *flakyStore) List(ctx context.Context, prefix string) ([]store.Item, int64, error) {
	if err := s.fail("List"); err != nil {
		return nil, 0, err
	}
	return s.Store.List(ctx, prefix)
}

func (s *flakyStore) Watch(ctx context.Context, prefix string, from int64) (store.Watcher, error) {
	if err := s.fail("Watch"); err != nil {
		return nil, err
	}
	return s.Store.Watch(ctx, prefix, from)
}

func TestFollowRetriesUnavailableStore(t *testing.T) {
	inner := newStore(t, bolt.Options{})
	s := &flakyStore{
		Store: inner,
		calls: map[string]int{},
		// The first watch fails; so does the list after it, then the
		// watch after the next list.
		failing: map[string][]int{"Watch": {1, 2}, "List": {2}},
	}
	put(t, s, "k/0", "0")
	v := newView(t)
	f := follow(t, s, "k/", v)
	// Until the third watch runs, writes reach the view only by listing.
	deadline := time.Now().Add(patience)
	for i := 1; v.appliedCount() == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatal("no change applied from a watch")
		}
		waitFor(t, f, put(t, s, "k/"+strconv.Itoa(i), "v"))
	}
	want, _ := contents(t, inner, "k/")
	got, resets := v.snapshot()
	if !maps.Equal(got, want) || resets != 3 {
		t.Fatalf("view = %v after %d resets, want %v after 3", got, resets, want)
	}
	if !f.Healthy() {
		t.Error("follower unhealthy after it recovered")
	}
}

func TestFollowStops(t *testing.T) {
	tests := []struct {
		name string
		stop func(s store.Store, f *store.Follower, cancel context.CancelFunc)
	}{
		{"store closed", func(s store.Store, _ *store.Follower, _ context.CancelFunc) { s.Close() }},
		{"context cancelled", func(_ store.Store, _ *store.Follower, cancel context.CancelFunc) { cancel() }},
		{"Stop", func(_ store.Store, f *store.Follower, _ context.CancelFunc) { f.Stop() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, bolt.Options{})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			f, err := store.Follow(ctx, s, "", newView(t))
			if err != nil {
				t.Fatal(err)
			}
			tc.stop(s, f, cancel)
			select {
			case <-f.Done():
			case <-time.After(patience):
				t.Fatal("follower did not stop")
			}
			if f.Healthy() {
				t.Error("stopped follower reports healthy")
			}
			if err := f.WaitFor(t.Context(), f.Revision()+1); !errors.Is(err, store.ErrStopped) {
				t.Errorf("WaitFor after stop: err = %v, want ErrStopped", err)
			}
			if err := f.WaitFor(t.Context(), f.Revision()); err != nil {
				t.Errorf("WaitFor of a reached revision after stop: %v", err)
			}
		})
	}
}

func TestFollowFailsWhenListFails(t *testing.T) {
	s := newStore(t, bolt.Options{})
	s.Close()
	if _, err := store.Follow(t.Context(), s, "", newView(t)); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Follow on a closed store: err = %v, want ErrClosed", err)
	}
}

func TestWaitForHonoursContext(t *testing.T) {
	s := newStore(t, bolt.Options{})
	f := follow(t, s, "", newView(t))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := f.WaitFor(ctx, f.Revision()+1); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitFor with a cancelled context: err = %v, want context.Canceled", err)
	}
}

// listedView is a view that records the revisions Listed reports.
type listedView struct {
	*view
	listed []int64 // guarded by view.mu
}

func (v *listedView) Listed(rev int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.listed = append(v.listed, rev)
}

// TestFollowReportsListedRevision: a ListedHandler learns the revision
// of the first listing and of the listing after a lost watch, each
// covering every write before it.
func TestFollowReportsListedRevision(t *testing.T) {
	s := newStore(t, bolt.Options{WatchBuffer: 1})
	before := put(t, s, "k/before", "x")
	v := &listedView{view: newView(t)}
	v.gate, v.entered = make(chan struct{}), make(chan struct{})
	f := follow(t, s, "k/", v)
	put(t, s, "k/0", "0")
	<-v.entered
	var last int64
	for i := 1; i < 10; i++ {
		last = put(t, s, "k/"+strconv.Itoa(i), strconv.Itoa(i))
	}
	close(v.gate)
	waitFor(t, f, last)
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.listed) != 2 || v.listed[0] < before || v.listed[1] < last {
		t.Fatalf("listed revisions %v, want the first at or after %d and the second at or after %d", v.listed, before, last)
	}
}

// TestTableFollowAlso: a handler following a table's prefix with the
// table sees its listings, their revisions and its changes, and has
// applied a change once the table's Sync returns for it.
func TestTableFollowAlso(t *testing.T) {
	s := newStore(t, bolt.Options{})
	before := put(t, s, "t/a", "1")
	table := store.NewTable("t/", func(it store.Item) (*string, bool) { v := string(it.Value); return &v, true })
	also := &listedView{view: newView(t)}
	if err := table.Follow(t.Context(), s, also); err != nil {
		t.Fatal(err)
	}
	rev := put(t, s, "t/b", "2")
	if err := table.Sync(t.Context(), rev); err != nil {
		t.Fatal(err)
	}
	items, resets := also.snapshot()
	if want := map[string]string{"t/a": "1", "t/b": "2"}; !maps.Equal(items, want) || resets != 1 {
		t.Fatalf("the other handler holds %v after %d listings, want %v after one", items, resets, want)
	}
	also.mu.Lock()
	defer also.mu.Unlock()
	if len(also.listed) != 1 || also.listed[0] < before {
		t.Fatalf("listed revisions %v, want one at or after %d", also.listed, before)
	}
	if v, ok := table.Get("b"); !ok || *v != "2" {
		t.Fatalf("the table holds b = %v, %v", v, ok)
	}
}

// tableReader is a handler following a table's prefix with it that
// records, at each listing and change, what the table holds.
type tableReader struct {
	table *store.Table[string]
	mu    sync.Mutex
	seen  []map[string]string
}

func (r *tableReader) read() {
	m := map[string]string{}
	r.table.Range(func(name string, v *string) { m[name] = *v })
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, m)
}

func (r *tableReader) Reset([]store.Item) { r.read() }
func (r *tableReader) Apply(store.Event)  { r.read() }

// TestTableFollowAlsoReadsTable: a handler following with a table finds
// each listing and change already applied to the table, and Range
// yields the table's names and records.
func TestTableFollowAlsoReadsTable(t *testing.T) {
	s := newStore(t, bolt.Options{})
	put(t, s, "t/a", "1")
	table := store.NewTable("t/", func(it store.Item) (*string, bool) { v := string(it.Value); return &v, true })
	r := &tableReader{table: table}
	if err := table.Follow(t.Context(), s, r); err != nil {
		t.Fatal(err)
	}
	rev := put(t, s, "t/b", "2")
	if err := table.Sync(t.Context(), rev); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	want := []map[string]string{{"a": "1"}, {"a": "1", "b": "2"}}
	if !slices.EqualFunc(r.seen, want, maps.Equal) {
		t.Fatalf("the handler read %v from the table, want %v", r.seen, want)
	}
}
