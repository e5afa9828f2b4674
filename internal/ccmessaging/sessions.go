package ccmessaging

import (
	"crypto/sha256"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gatehouse/gatehouse/internal/store"
)

const sessionPrefix = "ccsessions/"

// sessionKey is the store key of the session of (channel, user). Channel
// IDs are digits, so the first "/" after the prefix ends the channel.
func sessionKey(channel, user string) string { return sessionPrefix + channel + "/" + user }

// sessionRecord is the stored form of a session: who it is for, the
// generation of its current token and when that token was issued and
// expires, the previous generation while it is in its grace period, and
// the session's lifetime. The tokens themselves are not stored: they are
// minted again from these fields.
type sessionRecord struct {
	ID         string `json:"id"`
	Channel    string `json:"channelId"`
	ChannelUID string `json:"channelUid"`
	User       string `json:"userId"`
	UserName   string `json:"userName"`
	Locale     string `json:"locale"`
	AppKey     string `json:"appKey"`
	Gen        int64  `json:"gen"`
	Issued     int64  `json:"issued"` // unix s: iat of the current token
	Exp        int64  `json:"exp"`    // unix s: exp of the current token
	// The previous generation (Gen-1) works before PrevUntil (unix ms).
	PrevIssued   int64 `json:"prevIssued,omitempty"`
	PrevExp      int64 `json:"prevExp,omitempty"`
	PrevUntil    int64 `json:"prevUntil,omitempty"`
	Created      int64 `json:"created"`      // unix ms
	LastActivity int64 `json:"lastActivity"` // unix ms, as last written
	MaxEnd       int64 `json:"maxEnd"`       // unix ms: the session ends then at the latest
}

// activity is the last-activity time of a session as this replica saw
// it. Requests update it in memory; the background writer stores it.
type activity struct {
	last    atomic.Int64 // unix ms of the latest request served here
	flushed atomic.Int64 // the latest value written to the store
}

func (a *activity) touch(ms int64) {
	if ms > a.last.Load() {
		a.last.Store(ms)
	}
}

// session is a loaded session: its record, the hashes of its live tokens
// (the current one and, while it exists, the previous one) and its
// activity. A session's record is never modified; a change of the record
// replaces the session. The record is kept in its binary form, decoded
// when used: few pointers for the garbage collector to follow, whatever
// the number of sessions.
type session struct {
	enc string // the record's binary form
	act *activity
	// The token hashes are computed when the session is first looked up
	// by a token, and written once, under the table's lock, before the
	// session is indexed by them.
	indexed   bool
	cur, prev [sha256.Size]byte
}

// record returns the session's record; its strings share the session's
// memory.
func (s *session) record() sessionRecord {
	rec, _ := decodeSession(s.enc) // checked when the session was loaded
	return rec
}

// lastActivity is the latest request time known to this replica.
func (s *session) lastActivity(rec *sessionRecord) int64 {
	return max(rec.LastActivity, s.act.last.Load())
}

// hashes returns the hashes of the current token of rec and, if it has
// one, of its previous token.
func hashes(m minter, rec *sessionRecord) (cur, prev [sha256.Size]byte) {
	cur = tokenHash(m.mint(rec, rec.Gen, rec.Issued, rec.Exp))
	if rec.PrevUntil > 0 {
		prev = tokenHash(m.mint(rec, rec.Gen-1, rec.PrevIssued, rec.PrevExp))
	}
	return cur, prev
}

// userKey names a session by its channel and user, as its store key does.
type userKey struct{ channel, user string }

// sessionTable is the in-memory mirror of ccsessions/, kept current by a
// store.Follower, indexed by channel and user and by the hash of every
// token that can still be valid. Verifying a known token is one hash and
// one lookup. The hash index is filled as tokens are used: a session
// loaded at start-up costs no token signature until its first request.
// Only the follower changes byKey; byHash also grows on lookups.
type sessionTable struct {
	minter minter
	mu     sync.RWMutex
	byKey  map[userKey]*session // keys share the sessions' memory
	byHash map[[sha256.Size]byte]*session
}

func newSessionTable(m minter) *sessionTable {
	return &sessionTable{minter: m, byKey: map[userKey]*session{}, byHash: map[[sha256.Size]byte]*session{}}
}

// keyOf splits a store key into channel and user. Channel IDs are digits,
// so the first "/" after the prefix ends the channel.
func keyOf(key string) userKey {
	ch, user, _ := strings.Cut(strings.TrimPrefix(key, sessionPrefix), "/")
	return userKey{ch, user}
}

// load decodes a stored record into a session, keeping the activity of the
// session it replaces when that is the same session.
func (t *sessionTable) load(val []byte) (*session, userKey, bool) {
	enc, rec, ok := loadSession(val)
	if !ok {
		return nil, userKey{}, false
	}
	k := userKey{rec.Channel, rec.User}
	s := &session{enc: enc, act: &activity{}}
	if old := t.byKey[k]; old != nil && old.record().ID == rec.ID { // only the follower writes byKey
		s.act = old.act
	}
	return s, k, true
}

// Reset implements store.Handler.
func (t *sessionTable) Reset(items []store.Item) {
	byKey := make(map[userKey]*session, len(items))
	for _, it := range items {
		if s, k, ok := t.load(it.Value); ok {
			byKey[k] = s
		}
	}
	t.mu.Lock()
	t.byKey, t.byHash = byKey, map[[sha256.Size]byte]*session{}
	t.mu.Unlock()
}

// Apply implements store.Handler. A new or renewed session is indexed at
// once: its token is about to be used.
func (t *sessionTable) Apply(ev store.Event) {
	k := keyOf(ev.Item.Key)
	var next *session
	if ev.Type == store.EventPut {
		if s, _, ok := t.load(ev.Item.Value); ok {
			rec := s.record()
			s.cur, s.prev = hashes(t.minter, &rec)
			s.indexed, next = true, s
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if old := t.byKey[k]; old != nil {
		t.unindex(old)
		delete(t.byKey, k)
	}
	if next != nil {
		rec := next.record()
		t.byKey[userKey{rec.Channel, rec.User}] = next
		t.index(next, &rec)
	}
}

// index adds s's token hashes to the hash index; t.mu is held.
func (t *sessionTable) index(s *session, rec *sessionRecord) {
	t.byHash[s.cur] = s
	if rec.PrevUntil > 0 {
		t.byHash[s.prev] = s
	}
}

// unindex removes s's token hashes from the hash index; t.mu is held.
func (t *sessionTable) unindex(s *session) {
	if !s.indexed {
		return
	}
	delete(t.byHash, s.cur)
	if s.record().PrevUntil > 0 {
		delete(t.byHash, s.prev)
	}
}

// get returns the session of user on channel, or nil.
func (t *sessionTable) get(channel, user string) *session {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.byKey[userKey{channel, user}]
}

// lookup finds the session a token hash belongs to, its record and the
// generation of that token.
func (t *sessionTable) lookup(h [sha256.Size]byte) (*session, sessionRecord, int64, bool) {
	t.mu.RLock()
	s, ok := t.byHash[h]
	t.mu.RUnlock()
	if !ok {
		return nil, sessionRecord{}, 0, false
	}
	rec := s.record()
	if h == s.cur {
		return s, rec, rec.Gen, true
	}
	return s, rec, rec.Gen - 1, true
}

// resolve finds the session of a validly signed token c of hash h: in the
// hash index, or else by c's channel and user, indexing that session's
// tokens if that was not done yet. The token must be one of the session's
// live tokens exactly.
func (t *sessionTable) resolve(c *claims, h [sha256.Size]byte) (*session, sessionRecord, int64, bool) {
	if s, rec, gen, ok := t.lookup(h); ok {
		return s, rec, gen, true
	}
	k := userKey{c.Channel, c.User}
	t.mu.RLock()
	s := t.byKey[k]
	known := s == nil || s.indexed
	t.mu.RUnlock()
	if known {
		return nil, sessionRecord{}, 0, false
	}
	rec := s.record()
	if rec.ID != c.Session {
		return nil, sessionRecord{}, 0, false
	}
	cur, prev := hashes(t.minter, &rec) // outside the lock: signatures are slow
	t.mu.Lock()
	if !s.indexed && t.byKey[k] == s {
		s.cur, s.prev, s.indexed = cur, prev, true
		t.index(s, &rec)
	}
	t.mu.Unlock()
	return t.lookup(h)
}

// all returns every session, in no particular order.
func (t *sessionTable) all() []*session {
	t.mu.RLock()
	out := make([]*session, 0, len(t.byKey))
	for _, s := range t.byKey {
		out = append(out, s)
	}
	t.mu.RUnlock()
	return out
}
