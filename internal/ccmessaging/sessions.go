package ccmessaging

import (
	"crypto/sha256"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

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
	// The session ends when its app leaves AppEpoch (is deactivated) or
	// the channel's grant to the app is no longer Grant (the app was
	// removed from the channel), even if the app comes back.
	AppEpoch int64 `json:"appEpoch,omitempty"`
	Grant    int64 `json:"grant,omitempty"`
}

// session is a loaded session: its last activity, followed in the same
// allocation by its record in binary form, decoded when used. A session's
// record is never modified; a change of the record replaces the session.
// The allocation holds no pointer, so the garbage collector marks it
// without scanning it, whatever the number of sessions; the hashes of its
// tokens, once computed, are kept by the session table.
type session struct {
	// last is the latest request time (unix ms) served here and flushed
	// the latest one written to the store. A replacing version starts
	// from these values; a request that still holds the version replaced
	// may record its time there, a moment too late to be carried over.
	last, flushed atomic.Int64
	n             uint32        // length of the binary form that follows
	queued        atomic.Uint32 // 1 while in the table's list of sessions to flush
}

// sessionHeader is the size of a session before its binary form.
const sessionHeader = int(unsafe.Sizeof(session{}))

// newSession returns a session of the binary form enc, copied. The
// session's atomics need 8-byte alignment: Go allocates every object of
// 16 bytes or more that holds no pointer from a size class that is a
// multiple of 8, at a multiple of its size (TestSessionAlignment).
func newSession(enc []byte) *session {
	b := make([]byte, sessionHeader+len(enc)) // no pointers: not scanned
	copy(b[sessionHeader:], enc)
	s := (*session)(unsafe.Pointer(unsafe.SliceData(b)))
	s.n = uint32(len(enc))
	return s
}

// encoded returns the session's record in binary form, sharing the
// session's memory.
func (s *session) encoded() string {
	return unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(s), sessionHeader)), s.n)
}

// tokenHashes are the hashes of a session's current token and, while it
// has one, of its previous token.
type tokenHashes struct {
	cur, prev [sha256.Size]byte
	hasPrev   bool
}

// record returns the session's record; its strings share the session's
// memory.
func (s *session) record() sessionRecord {
	rec, _ := decodeSession(s.encoded()) // checked when the session was loaded
	return rec
}

// touch records a request served at ms.
func (s *session) touch(ms int64) {
	if ms > s.last.Load() {
		s.last.Store(ms)
	}
}

// lastActivity is the latest request time known to this replica.
func (s *session) lastActivity(rec *sessionRecord) int64 {
	return max(rec.LastActivity, s.last.Load())
}

// knownToken is a token whose hash is known: generation gen of session
// id, issued at iat and expiring at exp. A token is made of these values
// and of the session's channel and user alone, so a record of the same
// channel and user with the same values has the same token.
type knownToken struct {
	id            string
	gen, iat, exp int64
	hash          [sha256.Size]byte
}

// is reports whether k is generation gen of session id, issued at iat
// and expiring at exp.
func (k *knownToken) is(id string, gen, iat, exp int64) bool {
	return k.id == id && k.gen == gen && k.iat == iat && k.exp == exp
}

// hashes returns the token hashes of rec, taking those of the known
// tokens of the same channel and user and minting the others: a renewal's
// previous token is the earlier version's current one, and its new token
// may have been handed over by the renewal that minted it.
func hashes(m minter, rec *sessionRecord, known []knownToken) tokenHashes {
	hash := func(gen, iat, exp int64) [sha256.Size]byte {
		for i := range known {
			if known[i].is(rec.ID, gen, iat, exp) {
				return known[i].hash
			}
		}
		return tokenHash(m.mint(rec, gen, iat, exp))
	}
	h := tokenHashes{cur: hash(rec.Gen, rec.Issued, rec.Exp), hasPrev: rec.PrevUntil > 0}
	if h.hasPrev {
		h.prev = hash(rec.Gen-1, rec.PrevIssued, rec.PrevExp)
	}
	return h
}

// sessionTable is the in-memory mirror of ccsessions/, kept current by a
// store.Follower, indexed by channel and user and by the hash of every
// token that can still be valid. Verifying a known token is one hash and
// one lookup. The hash index is filled as tokens are used: a session
// loaded at start-up costs no token signature until its first request.
// The indexes hold session numbers, not pointers (see sessionSet), so
// the garbage collector's work per cycle does not grow with them.
// Only the follower changes the set; byHash and tokens also grow on
// lookups.
type sessionTable struct {
	minter minter
	mu     sync.RWMutex
	set    *sessionSet
	// byHash holds, by the hash of each indexed token, the number of its
	// session shifted left once, plus one if it is the session's previous
	// token.
	byHash map[[sha256.Size]byte]uint32
	// tokens holds the token hashes of every session in byHash, by
	// number, set once, before the session is indexed by them.
	tokens map[uint32]tokenHashes
	// keyHash hashes table keys; nil for a seeded maphash.
	keyHash func(string) uint64

	// dirtyMu guards dirty: the sessions that served a request since they
	// were last taken by takeDirty, each once (its queued flag is set), so
	// that writing last-activity times costs in proportion to the active
	// sessions, not to all of them.
	dirtyMu sync.Mutex
	dirty   []*session

	// handedMu guards handed: by table key, the new token of each renewal
	// in progress on this replica, whose hash the renewal computed before
	// writing, so that Apply need not mint the token again. Renewals of a
	// session on this replica are serialized, so there is one at most.
	handedMu sync.Mutex
	handed   map[string]knownToken
}

func newSessionTable(m minter) *sessionTable {
	return &sessionTable{minter: m, set: newSessionSet(0, nil), byHash: map[[sha256.Size]byte]uint32{},
		tokens: map[uint32]tokenHashes{}, handed: map[string]knownToken{}}
}

// keyOf returns the table key of a store key. Channel IDs are digits, so
// the first "/" after the prefix ends the channel.
func keyOf(key string) string {
	ch, user, _ := strings.Cut(strings.TrimPrefix(key, sessionPrefix), "/")
	return tableKey(ch, user)
}

// loadAt decodes a record stored under the table key k into a session
// and returns it with its record, which shares the session's memory. A
// record of another channel or user than k names is refused as
// unreadable: the table finds a session, and reuses the hashes of its
// tokens, by its key.
func loadAt(k string, val []byte) (*session, sessionRecord, bool) {
	enc, _, ok := loadSession(val)
	if !ok {
		return nil, sessionRecord{}, false
	}
	s := newSession(enc)
	if tableKeyIn(s.encoded()) != k {
		return nil, sessionRecord{}, false
	}
	return s, s.record(), true
}

// resume keeps the activity of old, of record oldRec, that s, of record
// rec, replaces, when both are versions of the same session.
func (s *session) resume(rec *sessionRecord, old *session, oldRec *sessionRecord) {
	if oldRec.ID == rec.ID {
		s.last.Store(old.last.Load())
		s.flushed.Store(old.flushed.Load())
	}
}

// Reset implements store.Handler.
func (t *sessionTable) Reset(items []store.Item) {
	set := newSessionSet(len(items), t.keyHash)
	for _, it := range items {
		k := keyOf(it.Key)
		s, rec, ok := loadAt(k, it.Value)
		if !ok {
			continue
		}
		if old, _ := t.set.get(k); old != nil { // only the follower writes the set
			oldRec := old.record()
			s.resume(&rec, old, &oldRec)
		}
		set.put(s)
	}
	t.mu.Lock()
	t.set, t.byHash, t.tokens = set, map[[sha256.Size]byte]uint32{}, map[uint32]tokenHashes{}
	t.mu.Unlock()
}

// Apply implements store.Handler. A new or renewed session is indexed at
// once: its token is about to be used.
func (t *sessionTable) Apply(ev store.Event) {
	k := keyOf(ev.Item.Key)
	old, n := t.set.get(k) // only the follower writes the set
	var oldRec sessionRecord
	if old != nil {
		oldRec = old.record()
	}
	var next *session
	var tokens tokenHashes
	if ev.Type == store.EventPut {
		next, tokens = t.next(k, ev.Item.Value, old, n, &oldRec)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if old != nil {
		t.unindex(n)
		t.set.remove(k)
	}
	if next != nil {
		n, _ := t.set.put(next) // under k, free since old was removed
		t.index(n, tokens)
	}
}

// next loads val, the version of the session under k that replaces old,
// of number n and record oldRec (old is nil if there is none), and
// computes its token hashes. It returns nil if val is unreadable.
func (t *sessionTable) next(k string, val []byte, old *session, n uint32, oldRec *sessionRecord) (*session, tokenHashes) {
	s, rec, ok := loadAt(k, val)
	if !ok {
		return nil, tokenHashes{}
	}
	var buf [3]knownToken
	known := t.appendHanded(buf[:0], k)
	if old != nil {
		s.resume(&rec, old, oldRec)
		known = t.appendIndexed(known, n, oldRec)
	}
	return s, hashes(t.minter, &rec, known)
}

// handOver tells the table the new token of a renewal of the session
// under k that is about to be written here, until withdraw(k).
func (t *sessionTable) handOver(k string, tok knownToken) {
	t.handedMu.Lock()
	t.handed[k] = tok
	t.handedMu.Unlock()
}

// withdraw ends the handover of a renewal of the session under k.
func (t *sessionTable) withdraw(k string) {
	t.handedMu.Lock()
	delete(t.handed, k)
	t.handedMu.Unlock()
}

// appendHanded appends to known the token handed over for the session
// under k, if any.
func (t *sessionTable) appendHanded(known []knownToken, k string) []knownToken {
	t.handedMu.Lock()
	defer t.handedMu.Unlock()
	if tok, ok := t.handed[k]; ok {
		known = append(known, tok)
	}
	return known
}

// appendIndexed appends to known the live tokens of the session of
// number n, of record rec, if it is indexed.
func (t *sessionTable) appendIndexed(known []knownToken, n uint32, rec *sessionRecord) []knownToken {
	t.mu.RLock()
	tokens, ok := t.tokens[n]
	t.mu.RUnlock()
	if !ok {
		return known
	}
	known = append(known, knownToken{id: rec.ID, gen: rec.Gen, iat: rec.Issued, exp: rec.Exp, hash: tokens.cur})
	if tokens.hasPrev {
		known = append(known, knownToken{id: rec.ID, gen: rec.Gen - 1, iat: rec.PrevIssued, exp: rec.PrevExp, hash: tokens.prev})
	}
	return known
}

// index adds the token hashes of the session of number n to the hash
// index; t.mu is held.
func (t *sessionTable) index(n uint32, tokens tokenHashes) {
	t.tokens[n] = tokens
	t.byHash[tokens.cur] = n << 1
	if tokens.hasPrev {
		t.byHash[tokens.prev] = n<<1 | 1
	}
}

// unindex removes the token hashes of the session of number n from the
// hash index; t.mu is held.
func (t *sessionTable) unindex(n uint32) {
	tokens, ok := t.tokens[n]
	if !ok {
		return
	}
	delete(t.tokens, n)
	delete(t.byHash, tokens.cur)
	if tokens.hasPrev {
		delete(t.byHash, tokens.prev)
	}
}

// get returns the session of user on channel, or nil.
func (t *sessionTable) get(channel, user string) *session {
	var buf [tableKeyBuf]byte
	k := appendTableKey(buf[:0], channel, user)
	t.mu.RLock()
	defer t.mu.RUnlock()
	s, _ := t.set.get(unsafe.String(unsafe.SliceData(k), len(k))) // no copy: only looked up
	return s
}

// lookup finds the session a token hash belongs to, its record and the
// generation of that token: one map lookup.
func (t *sessionTable) lookup(h [sha256.Size]byte) (*session, sessionRecord, int64, bool) {
	t.mu.RLock()
	ref, ok := t.byHash[h]
	var s *session
	if ok {
		s = t.set.at(ref >> 1)
	}
	t.mu.RUnlock()
	if s == nil {
		return nil, sessionRecord{}, 0, false
	}
	rec := s.record()
	return s, rec, rec.Gen - int64(ref&1), true
}

// resolve finds the session of a validly signed token c of hash h: in the
// hash index, or else by c's channel and user, indexing that session's
// tokens if that was not done yet. The token must be one of the session's
// live tokens exactly.
func (t *sessionTable) resolve(c *claims, h [sha256.Size]byte) (*session, sessionRecord, int64, bool) {
	if s, rec, gen, ok := t.lookup(h); ok {
		return s, rec, gen, true
	}
	k := tableKey(c.Channel, c.User)
	t.mu.RLock()
	s, n := t.set.get(k)
	_, indexed := t.tokens[n]
	known := s == nil || indexed
	t.mu.RUnlock()
	if known {
		return nil, sessionRecord{}, 0, false
	}
	rec := s.record()
	if rec.ID != c.Session {
		return nil, sessionRecord{}, 0, false
	}
	tokens := hashes(t.minter, &rec, nil) // outside the lock: signatures are slow
	t.mu.Lock()
	if _, indexed := t.tokens[n]; !indexed && t.set.at(n) == s {
		t.index(n, tokens)
	}
	t.mu.Unlock()
	return t.lookup(h)
}

// touch records a request served by s at ms, and queues s for the next
// flush.
func (t *sessionTable) touch(s *session, ms int64) {
	s.touch(ms)
	t.queue(s)
}

// queue queues s for the next flush unless it is queued already.
func (t *sessionTable) queue(s *session) {
	if s.queued.Load() == 0 && s.queued.CompareAndSwap(0, 1) {
		t.dirtyMu.Lock()
		t.dirty = append(t.dirty, s)
		t.dirtyMu.Unlock()
	}
}

// takeDirty returns the sessions queued since the last call and empties
// the queue. Each session leaves the queue as it is returned: the caller
// must read its last activity after that (see flush), so that a request
// served meanwhile queues it again.
func (t *sessionTable) takeDirty() []*session {
	t.dirtyMu.Lock()
	out := t.dirty
	t.dirty = nil
	t.dirtyMu.Unlock()
	return out
}

// all returns every session, in no particular order.
func (t *sessionTable) all() []*session {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.set.all(make([]*session, 0, t.set.len()))
}
