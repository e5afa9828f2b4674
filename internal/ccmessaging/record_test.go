package ccmessaging

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

func fullRecord() sessionRecord {
	return sessionRecord{
		ID: "6f1c2a9e-0d4b-4a57-9a43-2f7f1f0b1c3d", Channel: "1001", ChannelUID: "c-uid", User: "alice", UserName: "Alice Ω",
		Locale: "en_US", AppKey: "app-key", Gen: 7, Issued: 1_700_000_000, Exp: 1_700_003_600,
		PrevIssued: 1_699_996_400, PrevExp: 1_700_000_000, PrevUntil: 1_700_000_060_000,
		Created: 1_699_990_000_000, LastActivity: 1_700_000_001_000, MaxEnd: -1, AppEpoch: 2, Grant: 300,
	}
}

func TestSessionRecordEncoding(t *testing.T) {
	rec := fullRecord()
	for name, val := range map[string][]byte{
		"binary": encodeSession(&rec),
		"JSON":   store.EncodeJSON(rec),
	} {
		t.Run(name, func(t *testing.T) {
			enc, got, ok := loadSession(val)
			if !ok || got != rec {
				t.Fatalf("loaded %+v, %v; want %+v", got, ok, rec)
			}
			if again, ok := decodeSession(string(enc)); !ok || again != rec {
				t.Fatalf("binary form decoded as %+v, %v", again, ok)
			}
		})
	}
	// A record of the first binary form, without AppEpoch and Grant: the
	// current form of such a record, whose last two varints are zeros,
	// without them.
	old := rec
	old.AppEpoch, old.Grant = 0, 0
	cur := encodeSession(&old)
	v1 := append([]byte{sessionFormatV1}, cur[1:len(cur)-2]...)
	if _, got, ok := loadSession(v1); !ok || got != old {
		t.Errorf("first binary form loaded as %+v, %v; want %+v", got, ok, old)
	}
	val := encodeSession(&rec)
	for name, bad := range map[string][]byte{
		"empty":         nil,
		"unknown form":  append([]byte{9}, val[1:]...),
		"truncated":     val[:len(val)-1],
		"trailing byte": append(append([]byte{}, val...), 0),
		"no id":         encodeSession(&sessionRecord{Channel: "1001", User: "bob"}),
		"bad JSON":      []byte(`{"id":`),
	} {
		if _, got, ok := loadSession(bad); ok {
			t.Errorf("%s: loaded %+v", name, got)
		}
	}
}

// TestLoadedSessionsAreIndexedOnUse checks that a session loaded by Reset,
// whose token hashes are not computed at load, accepts its live tokens
// and no other.
func TestLoadedSessionsAreIndexedOnUse(t *testing.T) {
	m := minter{key: []byte("0123456789abcdef0123456789abcdef")}
	rec := fullRecord()
	rec.MaxEnd = 1_800_000_000_000
	now := time.UnixMilli(rec.PrevUntil - 1000)
	s := &Service{opts: Options{SessionMax: 24 * time.Hour}, minter: m, sessions: newSessionTable(m)}
	s.sessions.Reset([]store.Item{{Key: sessionKey(rec.Channel, rec.User), Value: encodeSession(&rec)}})
	for _, tc := range []struct {
		name    string
		gen     int64
		iat     int64
		exp     int64
		wantGen int64 // 0: refused
	}{
		{"current token", rec.Gen, rec.Issued, rec.Exp, rec.Gen},
		{"previous token", rec.Gen - 1, rec.PrevIssued, rec.PrevExp, rec.Gen - 1},
		{"older token", rec.Gen - 2, rec.PrevIssued - 3600, rec.PrevIssued, 0},
		{"current generation, other times", rec.Gen, rec.Issued + 1, rec.Exp + 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := m.mint(&rec, tc.gen, tc.iat, tc.exp)
			_, got, gen, err := s.find(context.Background(), tok, now)
			switch {
			case tc.wantGen == 0 && !errors.Is(err, errDeadToken):
				t.Fatalf("got generation %d, %v; want %v", gen, err, errDeadToken)
			case tc.wantGen != 0 && (err != nil || gen != tc.wantGen || got.ID != rec.ID):
				t.Fatalf("got generation %d, %v; want generation %d", gen, err, tc.wantGen)
			}
		})
	}
}

// put is the change feed's event of a write of rec.
func put(rec *sessionRecord) store.Event {
	return store.Event{Type: store.EventPut, Item: store.Item{Key: sessionKey(rec.Channel, rec.User), Value: encodeSession(rec)}}
}

// renewal returns rec renewed at iat.
func renewal(rec sessionRecord, iat int64) sessionRecord {
	rec.PrevIssued, rec.PrevExp, rec.PrevUntil = rec.Issued, rec.Exp, iat*1000+60_000
	rec.Gen, rec.Issued, rec.Exp = rec.Gen+1, iat, iat+3600
	return rec
}

// TestHashesReuseEarlierVersion checks that the hashes a version of a
// session takes from the indexed earlier version are those computed from
// scratch.
func TestHashesReuseEarlierVersion(t *testing.T) {
	m := minter{key: []byte("0123456789abcdef0123456789abcdef")}
	first := fullRecord()
	first.PrevUntil = 0
	renewed := renewal(first, first.Exp)
	touched := renewed
	touched.LastActivity += 5000
	replaced := renewed
	replaced.ID = "another session"
	for _, tc := range []struct {
		name          string
		earlier, next sessionRecord
	}{
		{"renewal", first, renewed},
		{"activity written", renewed, touched},
		{"session replaced", renewed, replaced},
		{"older generation back", renewed, first},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table := newSessionTable(m)
			table.Apply(put(&tc.earlier))
			table.Apply(put(&tc.next))
			_, n := table.set.get(tableKey(tc.next.Channel, tc.next.User))
			if got, want := table.tokens[n], hashes(m, &tc.next, nil); got != want {
				t.Fatalf("reused hashes %+v, want %+v", got, want)
			}
		})
	}
}

// TestRenewalIndexing checks how a renewed session is indexed: with the
// hash its renewal handed over when that is the hash of its new token,
// and otherwise (a renewal made elsewhere, arriving by the change feed)
// with hashes computed here.
func TestRenewalIndexing(t *testing.T) {
	m := minter{key: []byte("0123456789abcdef0123456789abcdef")}
	first := fullRecord()
	first.PrevUntil = 0
	renewed := renewal(first, first.Exp)
	want := hashes(m, &renewed, nil)
	handed := [sha256.Size]byte{1} // no token's hash: found only if handed over
	applied := func(table *sessionTable) { table.Apply(put(&first)) }
	loaded := func(table *sessionTable) { // loaded at start-up: not indexed yet
		table.Reset([]store.Item{put(&first).Item})
	}
	for _, tc := range []struct {
		name    string
		earlier func(*sessionTable)
		hand    *knownToken
		wantCur [sha256.Size]byte
	}{
		{"handed over", applied, &knownToken{id: renewed.ID, gen: renewed.Gen, iat: renewed.Issued, exp: renewed.Exp, hash: handed}, handed},
		{"handed over, earlier version not indexed", loaded, &knownToken{id: renewed.ID, gen: renewed.Gen, iat: renewed.Issued, exp: renewed.Exp, hash: handed}, handed},
		{"other token handed over", applied, &knownToken{id: renewed.ID, gen: renewed.Gen, iat: renewed.Issued + 1, exp: renewed.Exp + 1, hash: handed}, want.cur},
		{"other session handed over", applied, &knownToken{id: "other", gen: renewed.Gen, iat: renewed.Issued, exp: renewed.Exp, hash: handed}, want.cur},
		{"from the feed", applied, nil, want.cur},
		{"from the feed, earlier version not indexed", loaded, nil, want.cur},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table := newSessionTable(m)
			tc.earlier(table)
			k := tableKey(renewed.Channel, renewed.User)
			if tc.hand != nil {
				table.handOver(k, *tc.hand)
			}
			table.Apply(put(&renewed))
			table.withdraw(k)
			for _, lookup := range []struct {
				hash    [sha256.Size]byte
				wantGen int64
			}{{tc.wantCur, renewed.Gen}, {want.prev, renewed.Gen - 1}} {
				if _, rec, gen, ok := table.lookup(lookup.hash); !ok || gen != lookup.wantGen || rec != renewed {
					t.Errorf("hash %x: found %v, generation %d; want generation %d", lookup.hash, ok, gen, lookup.wantGen)
				}
			}
			if len(table.handed) != 0 {
				t.Errorf("%d tokens still handed over", len(table.handed))
			}
		})
	}
}

func TestTableKey(t *testing.T) {
	rec := fullRecord()
	enc := string(encodeSession(&rec))
	if got, want := tableKeyIn(enc), tableKey(rec.Channel, rec.User); got != want {
		t.Fatalf("key in the binary form %q, want %q", got, want)
	}
	if keyOf(sessionKey(rec.Channel, rec.User)) != tableKey(rec.Channel, rec.User) {
		t.Fatal("the store key gives another table key")
	}
	if tableKey("1", "12") == tableKey("11", "2") {
		t.Fatal("two sessions share a table key")
	}
}

// TestSessionHoldsItsRecord checks that a session keeps a copy of the
// binary form it was made of, after its last activity, and decodes it.
func TestSessionHoldsItsRecord(t *testing.T) {
	rec := fullRecord()
	val := encodeSession(&rec)
	s, got, ok := loadAt(tableKey(rec.Channel, rec.User), val)
	if !ok || got != rec {
		t.Fatalf("loaded %+v, %v; want %+v", got, ok, rec)
	}
	clear(val) // the session holds a copy
	s.touch(rec.LastActivity + 1)
	s.flushed.Store(rec.LastActivity)
	if got := s.record(); got != rec {
		t.Fatalf("record %+v after use, want %+v", got, rec)
	}
	if got, want := s.encoded(), string(encodeSession(&rec)); got != want {
		t.Fatalf("binary form %q, want %q", got, want)
	}
	if s.last.Load() != rec.LastActivity+1 || s.flushed.Load() != rec.LastActivity {
		t.Fatalf("activity %d, flushed %d", s.last.Load(), s.flushed.Load())
	}
}

// TestTouchQueuesOnce checks that the sessions that served requests are
// queued for the next flush once each, and queued again by a request
// served after they were taken.
func TestTouchQueuesOnce(t *testing.T) {
	m := minter{key: []byte("0123456789abcdef0123456789abcdef")}
	table := newSessionTable(m)
	var items []store.Item
	for _, user := range []string{"a", "b", "c"} {
		rec := fullRecord()
		rec.User = user
		items = append(items, put(&rec).Item)
	}
	table.Reset(items)
	a, b := table.get("1001", "a"), table.get("1001", "b")
	table.touch(a, 1)
	table.touch(b, 2)
	table.touch(a, 3)
	if got := table.takeDirty(); len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("queued %v, want a and b once", got)
	}
	if got := table.takeDirty(); len(got) != 0 {
		t.Fatalf("queued %d sessions again without a request", len(got))
	}
	a.queued.Store(0) // as flush does once it took a
	table.touch(b, 4) // b was not released: still counted as queued
	table.touch(a, 5)
	if got := table.takeDirty(); len(got) != 1 || got[0] != a || a.last.Load() != 5 {
		t.Fatalf("queued %v, want a alone, with its last request", got)
	}
}
