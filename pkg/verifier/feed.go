package verifier

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/pkg/jwtform"
)

// Errors of Verify with a revocation feed.
var (
	// ErrRevoked: the feed says the token is revoked (logout, a password,
	// role or status change, a deleted or re-created account).
	ErrRevoked = errors.New("verifier: token is revoked")
	// ErrStale: the feed has been down longer than Feed.Staleness and
	// Feed.AcceptStale is false.
	ErrStale = errors.New("verifier: revocation feed is stale")
)

// Feed subscribes a Verifier to Gatehouse's revocation feed (GET
// /v4/revocations, Server-Sent Events), so that it refuses revoked tokens
// within about a second of their revocation on any replica. The feed
// keeps the revocations in memory; a verification looks them up there and
// makes no call. When the feed lists the keys that verify (its keys
// event), a fetched key it does not list, expired or revoked by an
// emergency rotation, stops verifying at once, and no fetch brings it
// back; a key it lists that was not fetched yet is fetched at once,
// whatever Options.MinRefreshInterval says (one fetch at a time, a few
// attempts at most per list of keys announced). A key set fetched after
// the last keys event is the newer word: a key created since (a rotation
// the feed, down or slower, has not told of yet) verifies once fetched.
// URL and Token are required; zero values of the others take the
// defaults.
type Feed struct {
	// URL is the feed, e.g.
	// https://gatehouse.example:30100/v4/revocations.
	URL string
	// Token returns the engine token to subscribe with; its account needs
	// the verb get on the resource revocation. It is called before every
	// connection, so it may log in again when the last token expired.
	Token func(ctx context.Context) (string, error)
	// Staleness is how long the feed may be down (nothing received, not
	// even a heartbeat) before verifications stop trusting it [1m].
	Staleness time.Duration
	// AcceptStale chooses what happens then: false (the default) refuses
	// every token with ErrStale until the feed is back (fail closed);
	// true accepts tokens the last known revocations do not refuse and
	// calls OnStale for each.
	AcceptStale bool
	// OnStale, with AcceptStale, is called with how long the feed has
	// been down for each token accepted meanwhile: the place for a log
	// line or a metric.
	OnStale func(down time.Duration)
	// OnError, when set, is told why a connection to the feed failed or
	// ended; the verifier reconnects on its own.
	OnError func(err error)
	// IdleTimeout ends a connection on which nothing arrived for that
	// long, to connect again [30s; a Gatehouse replica sends a heartbeat
	// every 10 s by default while it follows its store].
	IdleTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait before reconnecting,
	// doubling after each failure [100ms, 10s].
	MinBackoff, MaxBackoff time.Duration
}

func (f *Feed) defaults() error {
	if f.URL == "" || f.Token == nil {
		return errors.New("verifier: Feed needs URL and Token")
	}
	if f.Staleness <= 0 {
		f.Staleness = time.Minute
	}
	if f.IdleTimeout <= 0 {
		f.IdleTimeout = 30 * time.Second
	}
	if f.MinBackoff <= 0 {
		f.MinBackoff = 100 * time.Millisecond
	}
	if f.MaxBackoff < f.MinBackoff {
		f.MaxBackoff = max(10*time.Second, f.MinBackoff)
	}
	return nil
}

// revocations is what the feed said, as the verifications read it.
type revocations struct {
	mu       sync.RWMutex
	tokens   map[string]int64 // revoked jti → exp
	accounts map[string]accountRevocation
	pruned   time.Time
	alive    atomic.Int64 // unix ns of the last thing received
	ready    chan struct{}
	once     sync.Once
}

func newRevocations() *revocations {
	return &revocations{tokens: map[string]int64{}, accounts: map[string]accountRevocation{}, ready: make(chan struct{})}
}

// accountRevocation is an account's credential version (see check).
type accountRevocation struct {
	Account       string `json:"account"`
	ID            string `json:"id"`
	RevokedBefore int64  `json:"revokedBeforeMs"`
	Deleted       bool   `json:"deleted"`
	seen          int64  // unix ms when the feed said it; not on the wire
}

// maxLifetime is the longest lifetime of the tokens Gatehouse issues
// (and Service Center's).
const maxLifetime = jwtform.MaxLifetime

// relevance is how long after an account's change what the feed said of
// it can still refuse a token, as Gatehouse's feed keeps it: the tokens
// the change revoked were issued before it, and live maxLifetime at most;
// a minute more covers the skew between Gatehouse's clock and this one.
const relevance = maxLifetime + time.Minute

// revokedToken is the data of a revoke event.
type revokedToken struct {
	JTI string `json:"jti"`
	Exp int64  `json:"exp"`
}

// check reports whether the feed revoked the token of c: its jti was
// revoked; its account is gone; its cred names another record of the
// account or a credential version below the account's; or, without
// cred, it was issued (issuedAtMs) at or before the account's watermark.
func (rv *revocations) check(c *claims) error {
	rv.mu.RLock()
	defer rv.mu.RUnlock()
	if _, ok := rv.tokens[c.ID]; ok && c.ID != "" {
		return ErrRevoked
	}
	a, ok := rv.accounts[c.Account]
	if !ok {
		return nil
	}
	switch {
	case a.Deleted:
		return ErrRevoked
	case c.Cred != nil:
		if c.Cred.ID != a.ID || c.Cred.Version < a.RevokedBefore {
			return ErrRevoked
		}
	case issuedAtMs(c) <= a.RevokedBefore:
		return ErrRevoked
	}
	return nil
}

// issuedAtMs is when a token without cred was issued, in unix ms, by
// Gatehouse's own rule (jwtform.IssuedAtMs, docs/api.md), so that the
// verifier refuses no token Gatehouse accepts.
func issuedAtMs(c *claims) int64 { return jwtform.IssuedAtMs(&c.RegisteredClaims) }

// checkFeed applies the feed to verified claims.
func (v *Verifier) checkFeed(c *claims) error {
	if err := v.revs.check(c); err != nil {
		return err
	}
	down := v.opts.Now().Sub(time.Unix(0, v.revs.alive.Load()))
	if down <= v.opts.Feed.Staleness {
		return nil
	}
	if !v.opts.Feed.AcceptStale {
		return fmt.Errorf("%w: nothing received for %s", ErrStale, down.Round(time.Millisecond))
	}
	if v.opts.Feed.OnStale != nil {
		v.opts.Feed.OnStale(down)
	}
	return nil
}

// startFeed subscribes and waits for the first snapshot, until ctx ends.
func (v *Verifier) startFeed(ctx context.Context) error {
	v.revs = newRevocations()
	client := *v.opts.HTTPClient
	client.Timeout = 0 // a stream does not end; IdleTimeout watches it
	bg, cancel := context.WithCancel(context.Background())
	v.stopFeed = cancel
	v.running.Go(func() { v.follow(bg, &client) })
	select {
	case <-v.revs.ready:
		return nil
	case <-ctx.Done():
		v.Close()
		return fmt.Errorf("verifier: no snapshot from the revocation feed: %w", ctx.Err())
	}
}

// Close stops the subscription to the revocation feed, if any, and
// returns once every goroutine the verifier started has ended (the
// subscription and the fetches of the key set its keys events started).
func (v *Verifier) Close() {
	if v.stopFeed != nil {
		v.stopFeed()
		v.running.Wait()
	}
}

// follow keeps connected to the feed until ctx ends, reconnecting with
// backoff and resuming after the last event id received.
func (v *Verifier) follow(ctx context.Context, client *http.Client) {
	f := v.opts.Feed
	var last string
	delay := f.MinBackoff
	for ctx.Err() == nil {
		got, err := v.stream(ctx, client, &last)
		if got {
			delay = f.MinBackoff
		}
		if err != nil && ctx.Err() == nil && f.OnError != nil {
			f.OnError(err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		delay = min(2*delay, f.MaxBackoff)
	}
}

// maxFeedLine bounds one line of the stream (a snapshot is one line).
const maxFeedLine = 64 << 20

// stream reads one connection of the feed, applying its events and
// recording the last id in *last, until the connection or life ends. It
// reports whether any event came.
func (v *Verifier) stream(life context.Context, client *http.Client, last *string) (bool, error) {
	f := v.opts.Feed
	tok, err := f.Token(life)
	if err != nil {
		return false, fmt.Errorf("verifier: feed token: %w", err)
	}
	ctx, cancel := context.WithCancel(life)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.URL, nil)
	if err != nil {
		return false, fmt.Errorf("verifier: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "text/event-stream")
	if *last != "" {
		req.Header.Set("Last-Event-ID", *last)
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, fmt.Errorf("verifier: revocation feed: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("verifier: revocation feed: status %d", resp.StatusCode)
	}
	idle := time.AfterFunc(f.IdleTimeout, cancel)
	defer idle.Stop()
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	var id, name string
	var data []byte
	got := false
	for {
		line, err := readLine(br)
		if err != nil {
			return got, fmt.Errorf("verifier: revocation feed: %w", err)
		}
		idle.Reset(f.IdleTimeout)
		v.revs.alive.Store(v.opts.Now().UnixNano())
		switch field, value, _ := bytes.Cut(line, []byte(":")); {
		case len(line) == 0:
			if name != "" || data != nil {
				if err := v.apply(life, name, data); err != nil {
					return got, err
				}
				got = true
				if id != "" {
					*last = id
				}
			}
			name, data = "", nil
		case len(field) == 0: // a comment: the heartbeat
		default:
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(field) {
			case "id":
				id = string(value)
			case "event":
				name = string(value)
			case "data":
				if data != nil {
					data = append(data, '\n')
				}
				data = append(data, value...)
			}
		}
	}
}

// readLine returns the next line without its line ending.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		part, err := br.ReadSlice('\n')
		line = append(line, part...)
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if len(line) > maxFeedLine {
			return nil, errors.New("line too long")
		}
	}
	return bytes.TrimRight(line, "\r\n"), nil
}

// apply applies one event of the feed. A fetch of the key set it starts
// lasts until life ends at the latest, not the connection.
func (v *Verifier) apply(life context.Context, name string, data []byte) error {
	rv := v.revs
	now := v.opts.Now()
	switch name {
	case "snapshot":
		var snap struct {
			Revoked  []revokedToken      `json:"revoked"`
			Accounts []accountRevocation `json:"accounts"`
		}
		if err := json.Unmarshal(data, &snap); err != nil {
			return fmt.Errorf("verifier: revocation feed snapshot: %w", err)
		}
		tokens := make(map[string]int64, len(snap.Revoked))
		for _, t := range snap.Revoked {
			tokens[t.JTI] = t.Exp
		}
		accounts := make(map[string]accountRevocation, len(snap.Accounts))
		for _, a := range snap.Accounts {
			a.seen = now.UnixMilli()
			accounts[a.Account] = a
		}
		rv.mu.Lock()
		rv.tokens, rv.accounts = tokens, accounts
		rv.mu.Unlock()
		rv.once.Do(func() { close(rv.ready) })
	case "revoke":
		var t revokedToken
		if err := json.Unmarshal(data, &t); err != nil {
			return fmt.Errorf("verifier: revocation feed event: %w", err)
		}
		rv.mu.Lock()
		rv.tokens[t.JTI] = t.Exp
		rv.pruneLocked(now, v.opts.Leeway)
		rv.mu.Unlock()
	case "account":
		var a accountRevocation
		if err := json.Unmarshal(data, &a); err != nil {
			return fmt.Errorf("verifier: revocation feed event: %w", err)
		}
		a.seen = now.UnixMilli()
		rv.mu.Lock()
		rv.accounts[a.Account] = a
		rv.pruneLocked(now, v.opts.Leeway)
		rv.mu.Unlock()
	case "keys":
		var ks struct {
			Keys []struct {
				ID string `json:"id"`
			} `json:"keys"`
		}
		if err := json.Unmarshal(data, &ks); err != nil {
			return fmt.Errorf("verifier: revocation feed event: %w", err)
		}
		ids := make(map[string]bool, len(ks.Keys))
		for _, k := range ks.Keys {
			ids[k.ID] = true
		}
		if v.list(ids) {
			v.fetchAnnounced(life, ids)
		}
	}
	return nil
}

// fetchAnnounced fetches the key set for a keys event listing ids, one
// of them not fetched yet: a key pre-published before it signs, or the
// key of an emergency rotation, which signs at once. It does not wait for
// MinRefreshInterval, which guards against forged key ids in tokens: the
// announcement comes from Gatehouse over the authenticated feed, and a
// verifier that fetched recently would otherwise refuse the new key's
// tokens until the interval passed. Nor does it count toward that
// interval: a token naming a key still missing afterwards fetches as
// soon as the interval since the last other fetch allows. It is bounded
// all the same: one such fetch runs at a time, and for each announced
// list of ids announceAttempts at most, fewer once the set fetched holds
// every key listed, so a feed repeating a list (as it does on every
// reconnection) or naming a key the key set does not hold cannot make the
// verifier fetch in a loop; the attempts after the first, announceBackoff
// apart and doubling, cover a replica that does not publish the key yet.
// A list announced while a fetch runs is fetched for once the fetches for
// the earlier list end, unless the key set fetched holds its keys by
// then. The fetches last until life ends at the latest.
func (v *Verifier) fetchAnnounced(life context.Context, ids map[string]bool) {
	v.announceMu.Lock()
	defer v.announceMu.Unlock()
	v.announced = ids
	if !v.announcing {
		v.announcing = true
		v.running.Go(func() { v.fetchAnnouncements(life) })
	}
}

// Bounds of the fetches for one announced list of keys (fetchAnnounced).
const (
	announceAttempts = 3
	announceBackoff  = 200 * time.Millisecond
)

// fetchAnnouncements runs the fetches of fetchAnnounced until none is
// due.
func (v *Verifier) fetchAnnouncements(life context.Context) {
	for {
		v.announceMu.Lock()
		ids := v.announced
		due := !maps.Equal(ids, v.fetchedFor) && life.Err() == nil
		v.announcing = due
		v.announceMu.Unlock()
		if !due {
			return
		}
		if v.fetchAnnouncement(life, ids) {
			v.announceMu.Lock()
			v.fetchedFor = ids
			v.announceMu.Unlock()
		}
	}
}

// fetchAnnouncement fetches the key set until it holds every key of ids,
// the list announced, announceAttempts times at most. It reports
// false when it stopped early because another list was announced
// meanwhile, which is then due instead.
func (v *Verifier) fetchAnnouncement(life context.Context, ids map[string]bool) bool {
	wait := announceBackoff
	for attempt := 1; ; attempt++ {
		v.fetchMu.Lock()
		missing := v.lacks(ids)
		if missing {
			now, since := v.opts.Now(), v.listingsOf()
			if ks, err := v.fetch(life); err == nil {
				v.install(ks, now, since)
				missing = v.lacks(ids)
			}
		}
		v.fetchMu.Unlock()
		if !missing || attempt == announceAttempts {
			return true
		}
		t := time.NewTimer(wait)
		select {
		case <-life.Done():
		case <-t.C:
		}
		t.Stop()
		wait *= 2
		v.announceMu.Lock()
		superseded := !maps.Equal(v.announced, ids)
		v.announceMu.Unlock()
		if superseded || life.Err() != nil {
			return !superseded
		}
	}
}

// pruneLocked drops, at most once a minute, what can no longer refuse a
// token this verifier would accept at now with leeway on exp: revoked
// token ids whose tokens expired, and accounts whose watermark and last
// word from the feed are both older than relevance. So memory follows
// the revocations still relevant between two snapshots, however long a
// connection lasts. rv.mu held.
func (rv *revocations) pruneLocked(now time.Time, leeway time.Duration) {
	if now.Sub(rv.pruned) < time.Minute {
		return
	}
	rv.pruned = now
	expired := now.Add(-leeway).Unix()
	for jti, exp := range rv.tokens {
		if exp < expired {
			delete(rv.tokens, jti)
		}
	}
	since := now.Add(-relevance - leeway).UnixMilli()
	for name, a := range rv.accounts {
		if max(a.RevokedBefore, a.seen) < since {
			delete(rv.accounts, name)
		}
	}
}
