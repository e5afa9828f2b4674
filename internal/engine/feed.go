package engine

import (
	"context"
	"iter"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/keyring"
	"github.com/gatehouse/gatehouse/internal/store"
)

// KeyAnnouncer is the key ring as the revocation feed sees it;
// *keyring.Ring implements it.
type KeyAnnouncer interface {
	Keys() []keyring.KeyInfo
	KeysChanged() <-chan struct{}
}

// Names of the events of the revocation feed (docs/api.md).
const (
	FeedSnapshot = "snapshot" // every revocation still relevant
	FeedRevoke   = "revoke"   // one revoked token id
	FeedAccount  = "account"  // an account's credential version moved, or the account is gone
	FeedKeys     = "keys"     // the keys that verify, after a change
)

// Feed sizes: how many events are kept for a resume, and how many may
// wait for one subscriber before it is dropped.
const (
	feedHistory = 8192
	feedBacklog = 1024
)

// The feed follows two prefixes, each with its own change feed; a cursor
// holds the store revision reached in each.
const (
	srcAccounts = iota
	srcRevoked
	feedSources
)

// cursor is the position of a subscriber: for each source, the store
// revision up to which it has been told every change. Its text form, the
// SSE event id, is the two revisions joined by a dot ("1523.1530").
type cursor [feedSources]int64

func (c cursor) String() string {
	return strconv.FormatInt(c[srcAccounts], 10) + "." + strconv.FormatInt(c[srcRevoked], 10)
}

// eventID names cursors, remembering the last one it named: subscribers
// that are up to date share a cursor, so one event sent to all of them
// is named once.
type eventID struct {
	at cursor
	id string
}

// of returns the text form of at.
func (m *eventID) of(at cursor) string {
	if m.id == "" || m.at != at {
		m.at, m.id = at, at.String()
	}
	return m.id
}

// parseCursor reads a cursor's text form.
func parseCursor(s string) (cursor, bool) {
	var c cursor
	a, r, ok := strings.Cut(s, ".")
	if !ok {
		return c, false
	}
	var err1, err2 error
	c[srcAccounts], err1 = strconv.ParseInt(a, 10, 64)
	c[srcRevoked], err2 = strconv.ParseInt(r, 10, 64)
	return c, err1 == nil && err2 == nil && c[srcAccounts] >= 0 && c[srcRevoked] >= 0
}

// FeedEvent is one event of the revocation feed: its SSE id, name and
// JSON data.
type FeedEvent struct {
	ID   string
	Name string
	Data []byte
}

// RevokedToken is a revoked token id and its exp (unix seconds).
type RevokedToken struct {
	JTI string `json:"jti"`
	Exp int64  `json:"exp"`
}

// AccountRevocation is an account's credential version: a token whose
// cred names another id or a version below RevokedBefore is revoked, as
// is a token without cred issued at or before RevokedBefore (unix ms).
// Deleted: the account is gone and every token of it is revoked.
type AccountRevocation struct {
	Account       string `json:"account"`
	ID            string `json:"id,omitempty"`
	RevokedBefore int64  `json:"revokedBeforeMs,omitempty"`
	Deleted       bool   `json:"deleted,omitempty"`
}

// Snapshot is the data of a snapshot event.
type Snapshot struct {
	Revoked  []RevokedToken      `json:"revoked"`
	Accounts []AccountRevocation `json:"accounts"`
}

// feedEntry is one change kept for resumes.
type feedEntry struct {
	src  int
	rev  int64
	name string
	data []byte
}

// feedRing holds the last len(buf) changes in a fixed array written
// round and round, so keeping a change neither moves the others nor
// allocates.
type feedRing struct {
	buf  []feedEntry
	next int // slot of the next change
	n    int // changes held
}

func newFeedRing(size int) feedRing { return feedRing{buf: make([]feedEntry, size)} }

// push keeps e and returns the oldest change, which e overwrote, when the
// ring was full.
func (r *feedRing) push(e feedEntry) (old feedEntry, evicted bool) {
	old, evicted = r.buf[r.next], r.n == len(r.buf)
	r.buf[r.next] = e
	r.next = (r.next + 1) % len(r.buf)
	if !evicted {
		r.n++
	}
	return old, evicted
}

// all yields the changes held, oldest first.
func (r *feedRing) all() iter.Seq[feedEntry] {
	return func(yield func(feedEntry) bool) {
		first := r.next - r.n + len(r.buf)
		for i := range r.n {
			if !yield(r.buf[(first+i)%len(r.buf)]) {
				return
			}
		}
	}
}

// Feed is the revocation feed of one replica: the revocations still
// relevant, read from the engine's tables of accounts and of revoked
// token ids, and the recent changes, so a subscriber that reconnects
// resumes where it was. It never waits for a subscriber: one too far
// behind is dropped and must reconnect.
type Feed struct {
	now          func() time.Time
	accountTable *store.Table[accountRecord]
	revokedTable *store.Table[revokedRecord]

	mu sync.Mutex
	// accounts are the account table's records as of rev[srcAccounts]:
	// the table's own values, kept to tell which changes move a
	// credential version and which accounts are gone.
	accounts map[string]*accountRecord
	deleted  map[string]time.Time // accounts this replica saw deleted, and when
	keys     []byte               // data of the current keys event; nil without a key ring
	rev      cursor               // revision applied, per source
	floor    cursor               // the history holds every change after floor, per source
	started  [feedSources]bool
	pending  [feedSources][]feedEntry // changes a Reset found, logged at Listed
	history  feedRing
	subs     map[*Subscription]struct{}
}

// Subscription is one subscriber of the feed.
type Subscription struct {
	f      *Feed
	ch     chan FeedEvent
	at     cursor
	closed bool
}

// Events delivers the events after the initial ones. It is closed when
// the subscriber fell too far behind (it should reconnect and resume) or
// Close was called.
func (s *Subscription) Events() <-chan FeedEvent { return s.ch }

// Close ends the subscription.
func (s *Subscription) Close() {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.dropLocked(s)
}

// newFeed returns an empty feed on the engine's tables of accounts and of
// revoked token ids; each table hands it its listings and changes right
// after applying them itself (source). keys, when not nil, are announced
// until ctx ends.
func newFeed(ctx context.Context, keys KeyAnnouncer, now func() time.Time, accounts *store.Table[accountRecord], revoked *store.Table[revokedRecord]) *Feed {
	f := &Feed{now: now, accountTable: accounts, revokedTable: revoked, accounts: map[string]*accountRecord{},
		deleted: map[string]time.Time{}, history: newFeedRing(feedHistory), subs: map[*Subscription]struct{}{}}
	if keys != nil {
		f.setKeys(keys.Keys())
		go f.followKeys(ctx, keys)
	}
	return f
}

// source is the handler of the change feed of one of the feed's sources.
// It reads what changed from the source's table, so the table must have
// applied each listing and change before it is handed to the source, as
// Table.Follow does.
func (f *Feed) source(src int) store.Handler { return feedSource{f, src} }

// followKeys announces the key ring's changes until ctx ends.
func (f *Feed) followKeys(ctx context.Context, keys KeyAnnouncer) {
	for {
		changed := keys.KeysChanged()
		f.setKeys(keys.Keys())
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// setKeys records the keys and announces them if they changed.
func (f *Feed) setKeys(infos []keyring.KeyInfo) {
	data := store.EncodeJSON(struct {
		Keys []keyring.KeyInfo `json:"keys"`
	}{infos})
	f.mu.Lock()
	defer f.mu.Unlock()
	if slices.Equal(data, f.keys) {
		return
	}
	f.keys = data
	var ids eventID
	for s := range f.subs {
		f.sendLocked(s, FeedEvent{ID: ids.of(s.at), Name: FeedKeys, Data: data})
	}
}

// Subscribe starts a subscription at the cursor last, an event id the
// subscriber received earlier ("" for none). It returns the events to
// send first: the changes after last when the history still holds them,
// else a snapshot of every revocation still relevant (also when last is
// empty or malformed); then the current keys.
func (f *Feed) Subscribe(last string) (*Subscription, []FeedEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &Subscription{f: f, ch: make(chan FeedEvent, feedBacklog)}
	var first []FeedEvent
	if at, ok := parseCursor(last); ok && f.resumable(at) {
		s.at = at
		var ids eventID
		for e := range f.history.all() {
			if ev, ok := s.next(e, &ids); ok {
				first = append(first, ev)
			}
		}
	} else {
		s.at = f.rev
		first = append(first, FeedEvent{ID: s.at.String(), Name: FeedSnapshot, Data: store.EncodeJSON(f.snapshotLocked())})
	}
	if f.keys != nil {
		first = append(first, FeedEvent{ID: s.at.String(), Name: FeedKeys, Data: f.keys})
	}
	f.subs[s] = struct{}{}
	return s, first
}

// resumable reports whether the history holds every change after at.
func (f *Feed) resumable(at cursor) bool {
	for src := range feedSources {
		if at[src] < f.floor[src] {
			return false
		}
	}
	return true
}

// next returns the event of e for s, unless s was told of it already,
// and moves s past it; ids names the event.
func (s *Subscription) next(e feedEntry, ids *eventID) (FeedEvent, bool) {
	if e.rev <= s.at[e.src] {
		return FeedEvent{}, false
	}
	s.at[e.src] = e.rev
	return FeedEvent{ID: ids.of(s.at), Name: e.name, Data: e.data}, true
}

// relevance is how long after a change of an account's credential
// version tokens it revoked may still be unexpired.
const relevance = MaxRequestedTTL + MaxLeeway

// snapshotLocked describes every revocation still relevant: revoked
// token ids not yet expired, the credential versions of accounts created
// or changed within the longest token lifetime, and the accounts this
// replica saw deleted within it (the store no longer has them). The
// revoked ids are read from their table, which applies a change just
// before the feed does, so a snapshot may already hold the id of a revoke
// event that follows it; a subscriber applies that twice to the same
// effect. f.mu held.
func (f *Feed) snapshotLocked() Snapshot {
	now := f.now()
	snap := Snapshot{Revoked: []RevokedToken{}, Accounts: []AccountRevocation{}}
	f.revokedTable.Range(func(jti string, rec *revokedRecord) {
		if rec.Exp > now.Unix() {
			snap.Revoked = append(snap.Revoked, RevokedToken{JTI: jti, Exp: rec.Exp})
		}
	})
	since := now.Add(-relevance).UnixMilli()
	for name, rec := range f.accounts {
		if max(rec.RevokedBefore, rec.CreateTime*1000) > since {
			snap.Accounts = append(snap.Accounts, AccountRevocation{Account: name, ID: rec.ID, RevokedBefore: rec.RevokedBefore})
		}
	}
	for name, at := range f.deleted {
		_, exists := f.accounts[name]
		switch {
		case now.Sub(at) > relevance:
			delete(f.deleted, name)
		case !exists:
			snap.Accounts = append(snap.Accounts, AccountRevocation{Account: name, Deleted: true})
		}
	}
	slices.SortFunc(snap.Revoked, func(a, b RevokedToken) int { return strings.Compare(a.JTI, b.JTI) })
	slices.SortFunc(snap.Accounts, func(a, b AccountRevocation) int { return strings.Compare(a.Account, b.Account) })
	return snap
}

// logLocked keeps e in the history and sends it to every subscriber.
// f.mu held.
func (f *Feed) logLocked(e feedEntry) {
	if old, evicted := f.history.push(e); evicted {
		f.floor[old.src] = max(f.floor[old.src], old.rev)
	}
	var ids eventID
	for s := range f.subs {
		if ev, ok := s.next(e, &ids); ok {
			f.sendLocked(s, ev)
		}
	}
}

// sendLocked queues ev for s, dropping s when its backlog is full.
// f.mu held.
func (f *Feed) sendLocked(s *Subscription, ev FeedEvent) {
	select {
	case s.ch <- ev:
	default:
		f.dropLocked(s)
	}
}

// dropLocked ends s. f.mu held.
func (f *Feed) dropLocked(s *Subscription) {
	if !s.closed {
		s.closed = true
		close(s.ch)
		delete(f.subs, s)
	}
}

// feedSource receives the change feed of one prefix.
type feedSource struct {
	f   *Feed
	src int
}

// Reset implements store.Handler: it brings the source's view up to
// the listing its table just took and keeps the differences to log at
// Listed. The first listing is the start of the history and logs
// nothing.
func (h feedSource) Reset(items []store.Item) {
	f := h.f
	f.mu.Lock()
	defer f.mu.Unlock()
	var diff []feedEntry
	switch h.src {
	case srcRevoked:
		if !f.started[srcRevoked] {
			return
		}
		// The ids revoked while the change feed was lost are the items
		// written after the revision the feed had reached.
		for _, it := range items {
			if it.Revision > f.rev[srcRevoked] {
				if e, ok := f.revokedLocked(it.Key); ok {
					diff = append(diff, e)
				}
			}
		}
	case srcAccounts:
		for _, it := range items {
			if e, ok := f.accountLocked(it.Key[len(accountPrefix):]); ok {
				diff = append(diff, e)
			}
		}
		for name := range f.accounts {
			if !f.accountTable.Has(name) {
				e, _ := f.accountLocked(name)
				diff = append(diff, e)
			}
		}
	}
	if f.started[h.src] {
		f.pending[h.src] = diff
	}
}

// Listed implements store.ListedHandler: the listing Reset took
// reflects rev.
func (h feedSource) Listed(rev int64) {
	f := h.f
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rev[h.src] = rev
	if !f.started[h.src] {
		f.started[h.src], f.floor[h.src] = true, rev
		return
	}
	for _, e := range f.pending[h.src] {
		e.rev = rev
		f.logLocked(e)
	}
	f.pending[h.src] = nil
}

// Apply implements store.Handler.
func (h feedSource) Apply(ev store.Event) {
	f := h.f
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rev[h.src] = ev.Item.Revision
	var e feedEntry
	var ok bool
	switch h.src {
	case srcRevoked:
		// A deletion is an expiry, which verifiers see by the exp: only
		// an id the table holds is logged.
		e, ok = f.revokedLocked(ev.Item.Key)
	case srcAccounts:
		e, ok = f.accountLocked(ev.Item.Key[len(accountPrefix):])
	}
	if ok {
		e.rev = ev.Item.Revision
		f.logLocked(e)
	}
}

// revokedLocked returns the revoke event of the revoked-id table's record
// stored under key, if the table holds one. f.mu held.
func (f *Feed) revokedLocked(key string) (feedEntry, bool) {
	jti := key[len(revokedPrefix):]
	rec, ok := f.revokedTable.Get(jti)
	if !ok {
		return feedEntry{}, false
	}
	return feedEntry{src: srcRevoked, name: FeedRevoke, data: store.EncodeJSON(RevokedToken{JTI: jti, Exp: rec.Exp})}, true
}

// accountLocked brings the feed's view of account name up to the account
// table's and returns the account event when the credential version
// moved or the account is gone. f.mu held.
func (f *Feed) accountLocked(name string) (feedEntry, bool) {
	rec, exists := f.accountTable.Get(name)
	old, known := f.accounts[name]
	var ar AccountRevocation
	switch {
	case !exists && !known:
		return feedEntry{}, false
	case !exists:
		delete(f.accounts, name)
		f.deleted[name] = f.now()
		ar = AccountRevocation{Account: name, Deleted: true}
	default:
		f.accounts[name] = rec
		if known && old.ID == rec.ID && old.RevokedBefore == rec.RevokedBefore {
			return feedEntry{}, false
		}
		ar = AccountRevocation{Account: name, ID: rec.ID, RevokedBefore: rec.RevokedBefore}
	}
	return feedEntry{src: srcAccounts, name: FeedAccount, data: store.EncodeJSON(ar)}, true
}
