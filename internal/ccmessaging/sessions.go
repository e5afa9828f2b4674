package ccmessaging

import (
	"crypto/sha256"
	"encoding/json"
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

// session is a loaded session: its record, its live tokens (the current
// one and, while it exists, the previous one, as hashes) and its activity.
// A session value is never modified; a change of the record replaces it.
type session struct {
	key     string
	rec     sessionRecord
	token   string // the current token
	cur     [sha256.Size]byte
	prev    [sha256.Size]byte
	hasPrev bool
	act     *activity
}

// lastActivity is the latest request time known to this replica.
func (s *session) lastActivity() int64 { return max(s.rec.LastActivity, s.act.last.Load()) }

// sessionTable is the in-memory mirror of ccsessions/, kept current by a
// store.Follower, indexed both by key and by the hash of every token that
// can still be valid. Verifying a live token is one hash and one lookup.
type sessionTable struct {
	minter minter
	mu     sync.RWMutex
	byKey  map[string]*session
	byHash map[[sha256.Size]byte]*session
}

func newSessionTable(m minter) *sessionTable {
	return &sessionTable{minter: m, byKey: map[string]*session{}, byHash: map[[sha256.Size]byte]*session{}}
}

// build loads rec, keeping the activity of old when it is the same session.
func (t *sessionTable) build(key string, rec sessionRecord, old *session) *session {
	s := &session{key: key, rec: rec, act: &activity{}}
	if old != nil && old.rec.ID == rec.ID {
		s.act = old.act
	}
	s.token = t.minter.mint(&rec, rec.Gen, rec.Issued, rec.Exp)
	s.cur = tokenHash(s.token)
	if rec.PrevUntil > 0 {
		s.prev, s.hasPrev = tokenHash(t.minter.mint(&rec, rec.Gen-1, rec.PrevIssued, rec.PrevExp)), true
	}
	return s
}

func decodeSession(it store.Item) (sessionRecord, bool) {
	var rec sessionRecord
	ok := json.Unmarshal(it.Value, &rec) == nil && rec.ID != ""
	return rec, ok
}

// Reset implements store.Handler.
func (t *sessionTable) Reset(items []store.Item) {
	byKey := make(map[string]*session, len(items))
	byHash := make(map[[sha256.Size]byte]*session, 2*len(items))
	for _, it := range items {
		rec, ok := decodeSession(it)
		if !ok {
			continue
		}
		s := t.build(it.Key, rec, t.get(it.Key))
		byKey[it.Key] = s
		byHash[s.cur] = s
		if s.hasPrev {
			byHash[s.prev] = s
		}
	}
	t.mu.Lock()
	t.byKey, t.byHash = byKey, byHash
	t.mu.Unlock()
}

// Apply implements store.Handler.
func (t *sessionTable) Apply(ev store.Event) {
	key := ev.Item.Key
	var next *session
	if ev.Type == store.EventPut {
		if rec, ok := decodeSession(ev.Item); ok {
			next = t.build(key, rec, t.get(key))
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if old := t.byKey[key]; old != nil {
		delete(t.byHash, old.cur)
		if old.hasPrev {
			delete(t.byHash, old.prev)
		}
		delete(t.byKey, key)
	}
	if next != nil {
		t.byKey[key] = next
		t.byHash[next.cur] = next
		if next.hasPrev {
			t.byHash[next.prev] = next
		}
	}
}

// get returns the session under key, or nil.
func (t *sessionTable) get(key string) *session {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.byKey[key]
}

// lookup finds the session a token hash belongs to and the generation of
// that token.
func (t *sessionTable) lookup(h [sha256.Size]byte) (*session, int64, bool) {
	t.mu.RLock()
	s, ok := t.byHash[h]
	t.mu.RUnlock()
	if !ok {
		return nil, 0, false
	}
	if h == s.cur {
		return s, s.rec.Gen, true
	}
	return s, s.rec.Gen - 1, true
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
