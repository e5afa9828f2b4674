package engine

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// followedSource is a source of a feed with its table, handed listings
// and changes as Table.Follow hands them: to the table, then the feed.
type followedSource struct {
	table store.Handler
	src   feedSource
}

func (s followedSource) Reset(items []store.Item) { s.table.Reset(items); s.src.Reset(items) }
func (s followedSource) Listed(rev int64)         { s.src.Listed(rev) }
func (s followedSource) Apply(ev store.Event)     { s.table.Apply(ev); s.src.Apply(ev) }

// newTestFeed returns a feed on tables of its own, keeping the last
// history changes, and its sources.
func newTestFeed(tb testing.TB, history int) (f *Feed, accounts, revoked followedSource) {
	at := store.NewTable(accountPrefix, store.DecodeJSON[accountRecord])
	rt := store.NewTable(revokedPrefix, store.DecodeJSON[revokedRecord])
	f = newFeed(tb.Context(), nil, time.Now, at, rt)
	f.history = newFeedRing(history)
	return f, followedSource{at, feedSource{f, srcAccounts}}, followedSource{rt, feedSource{f, srcRevoked}}
}

// nextEvent returns the next event of s, failing the test after 10 s.
func nextEvent(t *testing.T, s *Subscription) FeedEvent {
	t.Helper()
	select {
	case ev, ok := <-s.Events():
		if !ok {
			t.Fatal("subscription ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return FeedEvent{}
}

// logout revokes a token id until an hour from now.
func (e *testEngine) logoutID(t *testing.T, jti string) {
	t.Helper()
	if err := e.Logout(bg, &Principal{Account: "ann", JTI: jti, Expires: time.Now().Add(time.Hour)}, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
}

// TestFeedResume: a subscriber that resumes after an event id gets
// exactly the events that followed; one without a usable id gets a
// snapshot, which lists accounts this replica saw deleted.
func TestFeedResume(t *testing.T) {
	e := newEngine(t, Options{})
	sub, first := e.Feed().Subscribe("")
	defer sub.Close()
	if len(first) != 1 || first[0].Name != FeedSnapshot {
		t.Fatalf("first events %+v, want one snapshot", first)
	}
	e.mkAccount(t, "ann", "Ann-Passw0rd!")
	created := nextEvent(t, sub)
	for !strings.Contains(string(created.Data), `"account":"ann"`) { // root's creation may come first
		created = nextEvent(t, sub)
	}
	if created.Name != FeedAccount {
		t.Fatalf("account creation: %+v", created)
	}
	var later []FeedEvent
	for i := range 3 {
		e.logoutID(t, fmt.Sprintf("jti-%d", i))
		later = append(later, nextEvent(t, sub))
	}
	resumed, replay := e.Feed().Subscribe(created.ID)
	defer resumed.Close()
	if len(replay) != len(later) {
		t.Fatalf("resume after %s: %d events, want %d", created.ID, len(replay), len(later))
	}
	for i, ev := range replay {
		if ev.ID != later[i].ID || string(ev.Data) != string(later[i].Data) {
			t.Fatalf("resumed event %d: %+v, want %+v", i, ev, later[i])
		}
	}

	if err := e.DeleteAccount(bg, admin, "ann"); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, sub); !strings.Contains(string(ev.Data), `"deleted":true`) {
		t.Fatalf("deletion: %+v", ev)
	}
	for _, last := range []string{"", "x", "0.0", "1.2.3"} {
		s, first := e.Feed().Subscribe(last)
		s.Close()
		var snap Snapshot
		if err := json.Unmarshal(first[0].Data, &snap); first[0].Name != FeedSnapshot || err != nil {
			t.Fatalf("Last-Event-ID %q: %+v", last, first[0])
		}
		if len(snap.Revoked) != 3 || !strings.Contains(string(first[0].Data), `{"account":"ann","deleted":true}`) {
			t.Fatalf("snapshot %s", first[0].Data)
		}
	}
}

// TestFeedDropsSlowSubscriber: a subscriber that reads nothing is
// dropped once its backlog is full, and the feed goes on for others.
func TestFeedDropsSlowSubscriber(t *testing.T) {
	e := newEngine(t, Options{})
	slow, _ := e.Feed().Subscribe("")
	defer slow.Close()
	for i := range feedBacklog + 1 {
		e.logoutID(t, fmt.Sprintf("jti-%d", i))
	}
	dropped := func() bool {
		e.feed.mu.Lock()
		defer e.feed.mu.Unlock()
		return slow.closed
	}
	for deadline := time.Now().Add(10 * time.Second); !dropped(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("slow subscriber not dropped")
		}
	}
	n := 0
	for range slow.Events() {
		n++
	}
	if n != feedBacklog {
		t.Fatalf("%d events queued, want the backlog of %d", n, feedBacklog)
	}
	fast, _ := e.Feed().Subscribe("")
	defer fast.Close()
	e.logoutID(t, "after")
	if ev := nextEvent(t, fast); ev.Name != FeedRevoke {
		t.Fatalf("after the drop: %+v", ev)
	}
}

// TestFeedRelistLogsDifferences: when a source is listed again after its
// change feed was lost, what changed meanwhile reaches subscribers as
// events at the listing's revision, so a resume from before it misses
// nothing.
func TestFeedRelistLogsDifferences(t *testing.T) {
	f, accounts, revoked := newTestFeed(t, feedHistory)
	item := func(key string, v any, rev int64) store.Item {
		return store.Item{Key: key, Value: store.EncodeJSON(v), Revision: rev}
	}
	ann := accountRecord{ID: "a1", Name: "ann", RevokedBefore: 5}
	accounts.Reset([]store.Item{item(accountPrefix+"ann", ann, 3)})
	accounts.Listed(4)
	revoked.Reset([]store.Item{item(revokedPrefix+"j1", revokedRecord{Exp: 1}, 2)})
	revoked.Listed(4)
	sub, _ := f.Subscribe("")
	defer sub.Close()
	revoked.Apply(store.Event{Type: store.EventPut, Item: item(revokedPrefix+"j2", revokedRecord{Exp: 2}, 6)})
	mid := nextEvent(t, sub)

	revoked.Reset([]store.Item{item(revokedPrefix+"j2", revokedRecord{Exp: 2}, 6), item(revokedPrefix+"j3", revokedRecord{Exp: 3}, 8)})
	revoked.Listed(9)
	accounts.Reset(nil)
	accounts.Listed(9)
	want := []string{`{"jti":"j3","exp":3}`, `{"account":"ann","deleted":true}`}
	for i, w := range want {
		if ev := nextEvent(t, sub); string(ev.Data) != w || ev.ID != []string{"4.9", "9.9"}[i] {
			t.Fatalf("after relisting: %s %s, want %s", ev.ID, ev.Data, w)
		}
	}
	resumed, replay := f.Subscribe(mid.ID)
	defer resumed.Close()
	if len(replay) != 2 || string(replay[0].Data) != want[0] || string(replay[1].Data) != want[1] {
		t.Fatalf("resume after %s: %+v", mid.ID, replay)
	}
}

// TestFeedReadsTheTables: the feed takes what changed from the records
// its tables decoded, not from the changes' bytes: handed each change or
// listing without its values, after the table applied it whole, it
// publishes the same events and snapshot.
func TestFeedReadsTheTables(t *testing.T) {
	f, accounts, revoked := newTestFeed(t, feedHistory)
	for _, h := range []followedSource{accounts, revoked} {
		h.Reset(nil)
		h.Listed(1)
	}
	sub, _ := f.Subscribe("")
	defer sub.Close()
	item := func(key string, v any, rev int64) store.Item {
		return store.Item{Key: key, Value: store.EncodeJSON(v), Revision: rev}
	}
	bare := func(it store.Item) store.Item { it.Value = nil; return it }
	apply := func(h followedSource, it store.Item) {
		h.table.Apply(store.Event{Type: store.EventPut, Item: it})
		h.src.Apply(store.Event{Type: store.EventPut, Item: bare(it)})
	}
	relist := func(h followedSource, rev int64, items ...store.Item) {
		h.table.Reset(items)
		var bares []store.Item
		for _, it := range items {
			bares = append(bares, bare(it))
		}
		h.src.Reset(bares)
		h.src.Listed(rev)
	}
	exp := time.Now().Add(time.Hour).Unix()
	created := time.Now().Unix()
	j1 := item(revokedPrefix+"j1", revokedRecord{Exp: exp}, 2)
	apply(revoked, j1)
	apply(accounts, item(accountPrefix+"ann", accountRecord{ID: "a1", Name: "ann", CreateTime: created, RevokedBefore: 5}, 3))
	relist(revoked, 6, j1, item(revokedPrefix+"j2", revokedRecord{Exp: exp}, 5))
	relist(accounts, 6, item(accountPrefix+"ann", accountRecord{ID: "a1", Name: "ann", CreateTime: created, RevokedBefore: 6}, 4))
	want := []string{
		fmt.Sprintf(`{"jti":"j1","exp":%d}`, exp),
		`{"account":"ann","id":"a1","revokedBeforeMs":5}`,
		fmt.Sprintf(`{"jti":"j2","exp":%d}`, exp),
		`{"account":"ann","id":"a1","revokedBeforeMs":6}`,
	}
	for _, w := range want {
		if ev := nextEvent(t, sub); string(ev.Data) != w {
			t.Fatalf("event %s %s, want %s", ev.ID, ev.Data, w)
		}
	}
	s, first := f.Subscribe("")
	s.Close()
	wantSnap := fmt.Sprintf(`{"revoked":[{"jti":"j1","exp":%d},{"jti":"j2","exp":%d}],"accounts":[{"account":"ann","id":"a1","revokedBeforeMs":6}]}`, exp, exp)
	if first[0].ID != "6.6" || string(first[0].Data) != wantSnap {
		t.Fatalf("snapshot %s %s, want 6.6 %s", first[0].ID, first[0].Data, wantSnap)
	}
}

// TestFeedResumeAtHistoryBoundary: with room for the last n changes, a
// subscriber that resumes after one of them, or after the change just
// before them, gets exactly the changes that followed; one that resumes
// from any earlier change gets a snapshot. Checked after every change
// while the history wraps round three times, with changes of both
// sources.
func TestFeedResumeAtHistoryBoundary(t *testing.T) {
	const n = 4
	f, accounts, revoked := newTestFeed(t, n)
	for _, h := range []followedSource{accounts, revoked} {
		h.Reset(nil)
		h.Listed(10)
	}
	live, _ := f.Subscribe("")
	defer live.Close()
	ids := []string{"10.10"} // ids[i]: the event id after the i-th change
	var events []FeedEvent   // events[i]: the event of change i+1
	exp := time.Now().Add(time.Hour).Unix()
	for i := 1; i <= 3*n+1; i++ {
		rev := int64(10 + i)
		if i%3 == 0 {
			rec := accountRecord{ID: "a1", Name: "ann", RevokedBefore: rev}
			accounts.Apply(store.Event{Type: store.EventPut, Item: store.Item{Key: accountPrefix + "ann", Value: store.EncodeJSON(rec), Revision: rev}})
		} else {
			rec := revokedRecord{Exp: exp}
			revoked.Apply(store.Event{Type: store.EventPut, Item: store.Item{Key: fmt.Sprintf("%sj%d", revokedPrefix, i), Value: store.EncodeJSON(rec), Revision: rev}})
		}
		ev := nextEvent(t, live)
		events, ids = append(events, ev), append(ids, ev.ID)
		for j, last := range ids[:i+1] {
			s, replay := f.Subscribe(last)
			s.Close()
			if j < i-n {
				if len(replay) != 1 || replay[0].Name != FeedSnapshot || replay[0].ID != ev.ID {
					t.Fatalf("after change %d, resume from change %d (%s): %+v, want a snapshot at %s", i, j, last, replay, ev.ID)
				}
				continue
			}
			if want := events[j:i]; !slices.EqualFunc(replay, want, func(a, b FeedEvent) bool {
				return a.ID == b.ID && a.Name == b.Name && string(a.Data) == string(b.Data)
			}) {
				t.Fatalf("after change %d, resume from change %d (%s): %+v, want %+v", i, j, last, replay, want)
			}
		}
	}
}

// TestFeedEventIDsPerSubscriber: subscribers at different cursors (one
// resumed with an id from a replica further on) get each event under the
// id of their own cursor.
func TestFeedEventIDsPerSubscriber(t *testing.T) {
	f, accounts, revoked := newTestFeed(t, feedHistory)
	for _, h := range []followedSource{accounts, revoked} {
		h.Reset(nil)
		h.Listed(10)
	}
	var subs []*Subscription
	for _, last := range []string{"", "12.10", "", "20.10", ""} {
		s, _ := f.Subscribe(last)
		defer s.Close()
		subs = append(subs, s)
	}
	rec := store.EncodeJSON(revokedRecord{Exp: time.Now().Add(time.Hour).Unix()})
	revoked.Apply(store.Event{Type: store.EventPut, Item: store.Item{Key: revokedPrefix + "j", Value: rec, Revision: 11}})
	for i, want := range []string{"10.11", "12.11", "10.11", "20.11", "10.11"} {
		if ev := nextEvent(t, subs[i]); ev.ID != want {
			t.Fatalf("subscriber %d: event id %s, want %s", i, ev.ID, want)
		}
	}
}
