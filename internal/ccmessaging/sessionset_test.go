package ccmessaging

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/gatehouse/gatehouse/internal/store"
)

// TestSessionSetClashes runs the same changes through tables whose key
// hash clashes for every key, for some, and never, and checks that each
// finds every session by key and by token, and none that ended.
func TestSessionSetClashes(t *testing.T) {
	m := minter{key: []byte("0123456789abcdef0123456789abcdef")}
	for name, hash := range map[string]func(string) uint64{
		"every key clashes": func(string) uint64 { return 7 },
		"some keys clash":   func(k string) uint64 { return uint64(len(k) % 3) },
		"seeded maphash":    nil,
	} {
		t.Run(name, func(t *testing.T) {
			table := newSessionTable(m)
			table.keyHash = hash
			recs := map[string]sessionRecord{}
			var items []store.Item
			for i := range 6 {
				rec := fullRecord()
				rec.User, rec.ID, rec.PrevUntil = fmt.Sprintf("user-%d", i), fmt.Sprintf("id-%d", i), 0
				recs[rec.User] = rec
				items = append(items, put(&rec).Item)
			}
			table.Reset(items) // the set is rebuilt with keyHash
			check := func(step string) {
				t.Helper()
				if got := len(table.all()); got != len(recs) {
					t.Fatalf("%s: %d sessions, want %d", step, got, len(recs))
				}
				for user, rec := range recs {
					s := table.get(rec.Channel, user)
					if s == nil || s.record() != rec {
						t.Fatalf("%s: %s found as %v", step, user, s)
					}
					_, got, gen, err := (&Service{minter: m, sessions: table}).find(context.Background(),
						m.mint(&rec, rec.Gen, rec.Issued, rec.Exp), time.Unix(rec.Exp, 0)) // SessionMax 0: never looked up in the store
					if err != nil || got.ID != rec.ID || gen != rec.Gen {
						t.Fatalf("%s: %s's token found %s gen %d, %v", step, user, got.ID, gen, err)
					}
				}
			}
			check("loaded")

			del := func(user string) {
				rec := recs[user]
				delete(recs, user)
				table.Apply(store.Event{Type: store.EventDelete, Item: store.Item{Key: sessionKey(rec.Channel, user)}})
				if table.get(rec.Channel, user) != nil {
					t.Fatalf("%s still found once deleted", user)
				}
				tok := m.mint(&rec, rec.Gen, rec.Issued, rec.Exp)
				if _, _, _, err := (&Service{minter: m, sessions: table}).find(context.Background(), tok, time.Unix(rec.Exp, 0)); err == nil {
					t.Fatalf("%s's token still accepted once deleted", user)
				}
			}
			del("user-0") // the first key stored under the clashing hash
			check("first deleted")
			del("user-3")
			check("another deleted")

			renewed := renewal(recs["user-1"], recs["user-1"].Exp)
			recs["user-1"] = renewed
			table.Apply(put(&renewed))
			check("renewed")

			for _, user := range []string{"user-0", "user-7"} { // a number freed is reused
				rec := fullRecord()
				rec.User, rec.ID, rec.PrevUntil = user, "new-"+user, 0
				recs[user] = rec
				table.Apply(put(&rec))
			}
			check("added")
			if got := len(table.set.slots); got != 6 {
				t.Errorf("%d numbers for 6 sessions: freed numbers not reused", got)
			}
		})
	}
}

// TestSessionAlignment checks what the session's atomics rely on: its
// allocation, a byte slice, starts on an 8-byte boundary, and its
// header's size keeps the binary form after it in the same allocation.
func TestSessionAlignment(t *testing.T) {
	rec := fullRecord()
	enc := encodeSession(&rec)
	var keep []*session
	for i := range 1000 {
		s := newSession(enc[:len(enc)-i%len(enc)]) // every size class in reach
		if p := uintptr(unsafe.Pointer(s)); p%8 != 0 {
			t.Fatalf("session allocated at %#x, not 8-byte aligned", p)
		}
		keep = append(keep, s)
	}
	runtime.KeepAlive(keep)
	if sessionHeader%8 != 0 {
		t.Fatalf("session header of %d bytes", sessionHeader)
	}
}

// TestResolveAcrossReset resolves a token of the last session of a large
// set while the follower replaces the set by a smaller one, numbered in
// the reverse order, and back: a number read from the replaced set must
// find nothing in the new one, neither beyond it nor another session.
func TestResolveAcrossReset(t *testing.T) {
	m := minter{key: []byte("0123456789abcdef0123456789abcdef")}
	table := newSessionTable(m)
	s := &Service{minter: m, sessions: table} // SessionMax 0: never looked up in the store
	var large, small []store.Item
	var last sessionRecord
	for i := range 64 {
		rec := fullRecord()
		rec.User, rec.ID, rec.PrevUntil = fmt.Sprintf("user-%d", i), fmt.Sprintf("id-%d", i), 0
		large = append(large, put(&rec).Item)
		last = rec
	}
	small = slices.Clone(large)
	slices.Reverse(small) // every session under another number
	small = small[:len(small)/2]
	tok := m.mint(&last, last.Gen, last.Issued, last.Exp)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 2000 {
			table.Reset([][]store.Item{large, small}[i%2])
		}
	}()
	for {
		_, got, _, err := s.find(context.Background(), tok, time.Unix(last.Exp, 0))
		if err == nil && got.ID != last.ID {
			t.Fatalf("token of %s resolved to %s", last.ID, got.ID)
		}
		select {
		case <-done:
			return
		default:
		}
	}
}

// TestRecordUnderAnotherKey checks that a record naming another channel
// or user than its store key is refused, at load and as a change: the
// table finds sessions, and reuses their token hashes, by key.
func TestRecordUnderAnotherKey(t *testing.T) {
	m := minter{key: []byte("0123456789abcdef0123456789abcdef")}
	alice, bob := fullRecord(), fullRecord()
	bob.User = "bob" // same id, generation and times as alice's
	misfiled := put(&bob)
	misfiled.Item.Key = sessionKey(alice.Channel, alice.User)

	loaded := newSessionTable(m)
	loaded.Reset([]store.Item{misfiled.Item})
	applied := newSessionTable(m)
	applied.Apply(put(&alice))
	applied.Apply(misfiled)
	for name, table := range map[string]*sessionTable{"loaded": loaded, "applied": applied} {
		if s := table.get(bob.Channel, bob.User); s != nil {
			t.Errorf("%s: bob's record found under bob", name)
		}
		if s := table.get(alice.Channel, alice.User); s != nil && s.record().User != alice.User {
			t.Errorf("%s: alice's key holds %s's record", name, s.record().User)
		}
		s := &Service{minter: m, sessions: table}
		for _, rec := range []sessionRecord{alice, bob} {
			tok := m.mint(&rec, rec.Gen, rec.Issued, rec.Exp)
			if _, got, _, err := s.find(context.Background(), tok, time.Unix(rec.Exp, 0)); err == nil && got.User != rec.User {
				t.Errorf("%s: %s's token resolved to %s's session", name, rec.User, got.User)
			}
		}
	}
}
