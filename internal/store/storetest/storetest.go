// Package storetest is the conformance suite every store.Store backend
// must pass: reads and writes, compare-and-swap races, expiry, revisions,
// the change feed, persistence across reopen and crash safety. It is
// timing tolerant so that networked backends pass it too: nothing waits a
// fixed time, expiry is polled with a generous deadline.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// patience bounds every wait of the suite: for an event, for an expiry.
const patience = 15 * time.Second

// Run runs the conformance suite against stores made by newStore. Each
// call must return a fresh, empty, open store; calls may run in parallel.
// The suite closes some stores itself, so Close must tolerate being called
// again (newStore should also register Close with t.Cleanup). The backend
// must retain at least the 100 most recent revisions for Watch and must
// delete expired items within a few seconds.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateGetListDelete", testCreateGetListDelete},
		{"Scan", testScan},
		{"ScanIsOneSnapshot", testScanIsOneSnapshot},
		{"ListIsOneSnapshot", testListIsOneSnapshot},
		{"CreateExisting", testCreateExisting},
		{"CompareAndSwap", testCompareAndSwap},
		{"Update", testUpdate},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"CompareAndSwapRace", testCompareAndSwapRace},
		{"Expiry", testExpiry},
		{"Revisions", testRevisions},
		{"Watch", testWatch},
		{"WatchConcurrentWriters", testWatchConcurrentWriters},
		{"WatchHistory", testWatchHistory},
		{"WatchCancel", testWatchCancel},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

func testCreateGetListDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, err := s.Get(ctx, "a/1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of a missing key: err = %v, want ErrNotFound", err)
	}
	created := map[string]store.Item{}
	for _, key := range []string{"a/2", "b/1", "a/1", "a", "a/3"} {
		it := mustCreate(t, s, store.Item{Key: key, Value: []byte("value of " + key)})
		if it.Revision <= 0 {
			t.Fatalf("Create(%q) revision = %d, want > 0", key, it.Revision)
		}
		created[key] = it
		assertItem(t, mustGet(t, s, key), it)
	}

	tests := []struct {
		prefix string
		want   []string
	}{
		{"a/", []string{"a/1", "a/2", "a/3"}},
		{"a", []string{"a", "a/1", "a/2", "a/3"}},
		{"", []string{"a", "a/1", "a/2", "a/3", "b/1"}},
		{"b/", []string{"b/1"}},
		{"c/", nil},
	}
	for _, tc := range tests {
		items, rev := mustList(t, s, tc.prefix)
		if got := keys(items); !slices.Equal(got, tc.want) {
			t.Errorf("List(%q) keys = %q, want %q", tc.prefix, got, tc.want)
		}
		for _, it := range items {
			assertItem(t, it, created[it.Key])
		}
		if rev < created["a/3"].Revision {
			t.Errorf("List(%q) revision = %d, want >= %d", tc.prefix, rev, created["a/3"].Revision)
		}
	}

	put := mustPut(t, s, store.Item{Key: "a/1", Value: []byte("replaced")})
	if put.Revision <= created["a/3"].Revision {
		t.Errorf("Put revision = %d, want > %d", put.Revision, created["a/3"].Revision)
	}
	assertItem(t, mustGet(t, s, "a/1"), put)

	if err := s.Delete(ctx, "a/2"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, "a/2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after Delete: err = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "a/2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second Delete: err = %v, want ErrNotFound", err)
	}
	if items, _ := mustList(t, s, "a/"); !slices.Equal(keys(items), []string{"a/1", "a/3"}) {
		t.Errorf("List after Delete = %q, want [a/1 a/3]", keys(items))
	}
}

func testCreateExisting(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := mustCreate(t, s, store.Item{Key: "k", Value: []byte("first")})
	if _, err := s.Create(ctx, store.Item{Key: "k", Value: []byte("second")}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("Create of an existing key: err = %v, want ErrExists", err)
	}
	assertItem(t, mustGet(t, s, "k"), first)
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	again := mustCreate(t, s, store.Item{Key: "k", Value: []byte("again")})
	if again.Revision <= first.Revision {
		t.Errorf("revision after re-create = %d, want > %d", again.Revision, first.Revision)
	}
}

func testCompareAndSwap(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, err := s.CompareAndSwap(ctx, 1, store.Item{Key: "k", Value: []byte("x")}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CompareAndSwap of a missing key: err = %v, want ErrNotFound", err)
	}
	v1 := mustCreate(t, s, store.Item{Key: "k", Value: []byte("v1")})
	v2, err := s.CompareAndSwap(ctx, v1.Revision, store.Item{Key: "k", Value: []byte("v2")})
	if err != nil {
		t.Fatalf("CompareAndSwap with the current revision: %v", err)
	}
	if v2.Revision <= v1.Revision || string(v2.Value) != "v2" {
		t.Fatalf("CompareAndSwap returned %+v, want value v2 and revision > %d", v2, v1.Revision)
	}
	if _, err := s.CompareAndSwap(ctx, v1.Revision, store.Item{Key: "k", Value: []byte("stale")}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CompareAndSwap with a stale revision: err = %v, want ErrConflict", err)
	}
	assertItem(t, mustGet(t, s, "k"), v2)
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.CompareAndSwap(ctx, v2.Revision, store.Item{Key: "k", Value: []byte("x")}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CompareAndSwap after Delete: err = %v, want ErrNotFound", err)
	}
}

func testUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	created, err := s.Update(ctx, "k", func(cur *store.Item) (*store.Item, error) {
		if cur != nil {
			return nil, fmt.Errorf("current = %+v, want nil", *cur)
		}
		return &store.Item{Key: "k", Value: []byte("1")}, nil
	})
	if err != nil {
		t.Fatalf("Update creating: %v", err)
	}
	assertItem(t, mustGet(t, s, "k"), created)

	modified, err := s.Update(ctx, "k", func(cur *store.Item) (*store.Item, error) {
		if cur == nil || string(cur.Value) != "1" || cur.Revision != created.Revision {
			return nil, fmt.Errorf("current = %+v, want %+v", cur, created)
		}
		return &store.Item{Key: "k", Value: append(cur.Value, '2')}, nil
	})
	if err != nil {
		t.Fatalf("Update modifying: %v", err)
	}
	if modified.Revision <= created.Revision || string(modified.Value) != "12" {
		t.Fatalf("Update returned %+v, want value 12 and revision > %d", modified, created.Revision)
	}
	assertItem(t, mustGet(t, s, "k"), modified)

	refused := errors.New("refused")
	if _, err := s.Update(ctx, "k", func(*store.Item) (*store.Item, error) { return nil, refused }); err != refused {
		t.Fatalf("Update whose function fails: err = %v, want the function's error unchanged", err)
	}
	assertItem(t, mustGet(t, s, "k"), modified)

	deleted, err := s.Update(ctx, "k", func(*store.Item) (*store.Item, error) { return nil, nil })
	if err != nil {
		t.Fatalf("Update deleting: %v", err)
	}
	if deleted.Key != "k" || deleted.Revision <= modified.Revision || deleted.Value != nil {
		t.Errorf("Update deleting returned %+v, want key k, no value and the deletion's revision (> %d)", deleted, modified.Revision)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after Update deleted: err = %v, want ErrNotFound", err)
	}
	if none, err := s.Update(ctx, "absent", func(*store.Item) (*store.Item, error) { return nil, nil }); err != nil || none.Revision != 0 {
		t.Fatalf("Update deleting an absent key: %+v, %v; want revision 0, nil", none, err)
	}
	if items, _ := mustList(t, s, ""); len(items) != 0 {
		t.Errorf("List after deletes = %q, want nothing", keys(items))
	}
}

// testConcurrentUpdates increments one counter from many goroutines; no
// increment may be lost.
func testConcurrentUpdates(t *testing.T, s store.Store) {
	const writers, increments = 8, 50
	errs := parallel(writers, func(int) error {
		for range increments {
			if _, err := s.Update(t.Context(), "counter", increment("counter")); err != nil {
				return err
			}
		}
		return nil
	})
	for _, err := range errs {
		if err != nil {
			t.Fatalf("Update: %v", err)
		}
	}
	if got, want := string(mustGet(t, s, "counter").Value), fmt.Sprint(writers*increments); got != want {
		t.Fatalf("counter = %s, want %s", got, want)
	}
}

// testCompareAndSwapRace lets many goroutines swap from the same revision;
// exactly one may win each round.
func testCompareAndSwapRace(t *testing.T, s store.Store) {
	const rounds, racers = 10, 8
	cur := mustCreate(t, s, store.Item{Key: "k", Value: []byte("start")})
	for round := range rounds {
		results := make([]store.Item, racers)
		errs := parallel(racers, func(i int) error {
			var err error
			results[i], err = s.CompareAndSwap(t.Context(), cur.Revision, store.Item{Key: "k", Value: fmt.Appendf(nil, "%d/%d", round, i)})
			return err
		})
		winners := 0
		for i, err := range errs {
			switch {
			case err == nil:
				winners++
				cur = results[i]
			case !errors.Is(err, store.ErrConflict):
				t.Fatalf("round %d: CompareAndSwap: err = %v, want nil or ErrConflict", round, err)
			}
		}
		if winners != 1 {
			t.Fatalf("round %d: %d winners, want exactly 1", round, winners)
		}
		assertItem(t, mustGet(t, s, "k"), cur)
	}
}

func testExpiry(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, rev := mustList(t, s, "ttl/")
	w := mustWatch(t, ctx, s, "ttl/", rev+1)

	short := mustCreate(t, s, store.Item{Key: "ttl/short", Value: []byte("s"), Expires: time.Now().Add(2 * time.Second)})
	long := mustCreate(t, s, store.Item{Key: "ttl/long", Value: []byte("l"), Expires: time.Now().Add(time.Hour)})
	mustCreate(t, s, store.Item{Key: "ttl/none", Value: []byte("n")})
	got := mustGet(t, s, "ttl/long")
	if d := got.Expires.Sub(long.Expires).Abs(); d > time.Second {
		t.Errorf("Expires read back %v, want %v", got.Expires, long.Expires)
	}

	deadline := time.Now().Add(patience)
	for {
		_, err := s.Get(ctx, "ttl/short")
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("item still readable %v after its expiry", time.Since(short.Expires))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if items, _ := mustList(t, s, "ttl/"); !slices.Equal(keys(items), []string{"ttl/long", "ttl/none"}) {
		t.Errorf("List after expiry = %q, want [ttl/long ttl/none]", keys(items))
	}
	_, err := s.Update(ctx, "ttl/short", func(cur *store.Item) (*store.Item, error) {
		if cur != nil {
			return nil, fmt.Errorf("update function saw the expired item %+v", *cur)
		}
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}

	for {
		ev := nextEvent(t, w)
		if ev.Item.Key != "ttl/short" || ev.Type != store.EventDelete {
			continue
		}
		if ev.Item.Revision <= short.Revision {
			t.Errorf("expiry event revision = %d, want > %d", ev.Item.Revision, short.Revision)
		}
		break
	}
	again := mustCreate(t, s, store.Item{Key: "ttl/short", Value: []byte("again")})
	assertItem(t, mustGet(t, s, "ttl/short"), again)
}

// testRevisions checks that every kind of write moves the store revision
// forward.
func testRevisions(t *testing.T, s store.Store) {
	ctx := t.Context()
	var last int64
	advance := func(op string, rev int64) {
		t.Helper()
		if rev <= last {
			t.Fatalf("%s: revision %d, want > %d", op, rev, last)
		}
		last = rev
	}
	for i := range 5 {
		key := fmt.Sprintf("r/%d", i)
		advance("Create", mustCreate(t, s, store.Item{Key: key}).Revision)
		put := mustPut(t, s, store.Item{Key: key, Value: []byte("p")})
		advance("Put", put.Revision)
		swapped, err := s.CompareAndSwap(ctx, put.Revision, store.Item{Key: key, Value: []byte("c")})
		if err != nil {
			t.Fatal(err)
		}
		advance("CompareAndSwap", swapped.Revision)
		updated, err := s.Update(ctx, key, func(cur *store.Item) (*store.Item, error) {
			return &store.Item{Key: key, Value: []byte("u")}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		advance("Update", updated.Revision)
		if err := s.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		_, rev := mustList(t, s, "")
		advance("Delete", rev)
	}
}

// change is what a watcher must see for one write.
type change struct {
	typ   store.EventType
	key   string
	value string
	rev   int64
}

func changeOf(ev store.Event) change {
	return change{ev.Type, ev.Item.Key, string(ev.Item.Value), ev.Item.Revision}
}

func putChange(it store.Item) change {
	return change{store.EventPut, it.Key, string(it.Value), it.Revision}
}

func testWatch(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, rev := mustList(t, s, "")
	w := mustWatch(t, ctx, s, "w/", rev+1)
	var want []change
	want = append(want, putChange(mustCreate(t, s, store.Item{Key: "w/a", Value: []byte("1")})))
	mustPut(t, s, store.Item{Key: "x/a", Value: []byte("outside")})
	want = append(want, putChange(mustPut(t, s, store.Item{Key: "w/a", Value: []byte("2")})))
	updated, err := s.Update(ctx, "w/b", func(*store.Item) (*store.Item, error) {
		return &store.Item{Key: "w/b", Value: []byte("3")}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, putChange(updated))
	if err := s.Delete(ctx, "w/a"); err != nil {
		t.Fatal(err)
	}
	want = append(want, change{typ: store.EventDelete, key: "w/a"}) // revision checked by order
	mustPut(t, s, store.Item{Key: "x/b", Value: []byte("outside")})
	want = append(want, putChange(mustPut(t, s, store.Item{Key: "w/end", Value: []byte("4")})))

	var last int64
	for i, wc := range want {
		got := changeOf(nextEvent(t, w))
		if got.rev <= last {
			t.Fatalf("event %d revision %d after %d, want strictly increasing", i, got.rev, last)
		}
		last = got.rev
		if wc.rev == 0 {
			wc.rev = got.rev
		}
		if got != wc {
			t.Fatalf("event %d = %+v, want %+v", i, got, wc)
		}
	}
}

// testWatchConcurrentWriters checks that a watcher sees every write of
// concurrent writers exactly once, in strictly increasing revision order.
func testWatchConcurrentWriters(t *testing.T, s store.Store) {
	const writers, writes = 4, 25
	_, rev := mustList(t, s, "")
	w := mustWatch(t, t.Context(), s, "", rev+1)
	written := make([][]change, writers)
	errs := parallel(writers, func(g int) error {
		for i := range writes {
			it, err := s.Put(t.Context(), store.Item{Key: fmt.Sprintf("c/%d/%d", g, i), Value: fmt.Appendf(nil, "%d", i)})
			if err != nil {
				return err
			}
			written[g] = append(written[g], putChange(it))
		}
		return nil
	})
	want := map[int64]change{}
	for g, err := range errs {
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
		for _, c := range written[g] {
			want[c.rev] = c
		}
	}
	var last int64
	for range writers * writes {
		got := changeOf(nextEvent(t, w))
		if got.rev <= last {
			t.Fatalf("event revision %d after %d, want strictly increasing", got.rev, last)
		}
		last = got.rev
		if got != want[got.rev] {
			t.Fatalf("event %+v, want %+v", got, want[got.rev])
		}
	}
}

// testWatchHistory starts a watch at a past revision, which must replay
// the retained changes from there.
func testWatchHistory(t *testing.T, s store.Store) {
	var written []change
	for i := range 10 {
		written = append(written, putChange(mustPut(t, s, store.Item{Key: fmt.Sprintf("h/%d", i%3), Value: fmt.Appendf(nil, "%d", i)})))
	}
	w := mustWatch(t, t.Context(), s, "h/", written[3].rev)
	written = append(written, putChange(mustPut(t, s, store.Item{Key: "h/new", Value: []byte("new")})))
	for i, wc := range written[3:] {
		if got := changeOf(nextEvent(t, w)); got != wc {
			t.Fatalf("event %d = %+v, want %+v", i, got, wc)
		}
	}
}

func testWatchCancel(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	_, rev := mustList(t, s, "")
	w := mustWatch(t, ctx, s, "", rev+1)
	cancel()
	if err := waitEnd(t, w); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err after cancel = %v, want context.Canceled", err)
	}
}

func testClose(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	mustPut(t, s, store.Item{Key: "k", Value: []byte("v")})
	_, rev := mustList(t, s, "")
	w := mustWatch(t, ctx, s, "", rev+1)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := waitEnd(t, w); !errors.Is(err, store.ErrClosed) {
		t.Errorf("watcher Err after Close = %v, want ErrClosed", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Ping after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Get after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Put(ctx, store.Item{Key: "k"}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Put after Close = %v, want ErrClosed", err)
	}
}
