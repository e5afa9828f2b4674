package ccmessaging

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// TestFindUnknownRechecksTable covers a token that missed the session
// table just before the change feed delivered its record: findUnknown
// must judge it against the table as it is now. Every table here is at
// least as new as the token, so no case reaches the store.
func TestFindUnknownRechecksTable(t *testing.T) {
	m := minter{key: []byte("0123456789abcdef0123456789abcdef")}
	now := time.Unix(5000, 0)
	first := sessionRecord{ID: "x", Channel: "1001", User: "alice", Gen: 1, Issued: 1000, Exp: 4600, Created: 1_000_000}
	renewed := func(rec sessionRecord, at int64) sessionRecord {
		rec.PrevIssued, rec.PrevExp, rec.PrevUntil = rec.Issued, rec.Exp, now.Add(time.Minute).UnixMilli()
		rec.Gen, rec.Issued, rec.Exp = rec.Gen+1, at, at+3600
		return rec
	}
	second := renewed(first, 4700)
	replaced := sessionRecord{ID: "y", Channel: "1001", User: "alice", Gen: 1, Issued: 2000, Exp: 5600, Created: 2_000_000}
	tok := m.mint(&first, first.Gen, first.Issued, first.Exp)
	for _, tc := range []struct {
		name    string
		table   sessionRecord
		wantGen int64 // 0: the token is refused as superseded
	}{
		{"current generation", first, 1},
		{"previous generation in its grace", second, 1},
		{"two generations old", renewed(second, 4800), 0},
		{"session replaced", replaced, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Service{opts: Options{SessionMax: 24 * time.Hour}, minter: m, sessions: newSessionTable(m)}
			key := sessionKey(tc.table.Channel, tc.table.User)
			s.sessions.Apply(store.Event{Type: store.EventPut, Item: store.Item{Key: key, Value: store.EncodeJSON(tc.table)}})
			_, rec, gen, err := s.findUnknown(context.Background(), tok, tokenHash(tok), now)
			switch {
			case tc.wantGen == 0 && !errors.Is(err, errDeadToken):
				t.Fatalf("got generation %d, %v; want %v", gen, err, errDeadToken)
			case tc.wantGen != 0 && (err != nil || gen != tc.wantGen || rec.ID != first.ID):
				t.Fatalf("got generation %d, %v; want generation %d of session %s", gen, err, tc.wantGen, first.ID)
			}
		})
	}
}
