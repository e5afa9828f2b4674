// Package verifier checks Gatehouse engine tokens inside a Go service,
// without a call to Gatehouse per request. It fetches Gatehouse's public
// keys from /.well-known/jwks.json, caches them, fetches them again when a
// token names a key it does not know (at most once per
// Options.MinRefreshInterval, so forged key ids cannot flood Gatehouse),
// when the cached set is older than Options.MaxKeyAge or, with
// Options.Feed, when the feed announces a key not fetched yet; it
// verifies the RS512 signature and the expiry of each token locally.
//
// # Revocation
//
// Local verification alone sees only what the token itself says. It
// cannot see a logout (DELETE /v4/token), a password or role change, a
// deactivated or deleted account: Gatehouse revokes those tokens at once,
// but a service verifying locally keeps accepting them until their exp.
// Options.Feed closes that gap: the verifier subscribes to Gatehouse's
// revocation feed (GET /v4/revocations), keeps every revocation still
// relevant in memory, and refuses revoked tokens with ErrRevoked, still
// without a call per request. When the feed has been down longer than
// Feed.Staleness, the service chooses: refuse every token (the default)
// or accept with a hook (docs/enforcement.md). Roles in the claims are
// those at login, not the account's current ones; where that matters, ask
// Gatehouse about each request instead, through its gateway mode or GET
// /auth/verify.
package verifier

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse/gatehouse/pkg/jwtform"
)

// Errors of Verify. Returned errors wrap one of them, with the cause.
var (
	// ErrNoToken: the Authorization header is missing.
	ErrNoToken = errors.New("verifier: no authorization header")
	// ErrBadHeader: the Authorization header is not "Bearer <token>".
	ErrBadHeader = errors.New("verifier: invalid auth header")
	// ErrExpired: the token's exp has passed.
	ErrExpired = errors.New("verifier: token is expired")
	// ErrUnknownKey: no published key has the token's kid, even after
	// fetching the key set again.
	ErrUnknownKey = errors.New("verifier: token is signed by an unknown key")
	// ErrInvalid: malformed token, bad signature, wrong algorithm or
	// missing claims.
	ErrInvalid = errors.New("verifier: token is invalid")
)

// Algorithm is the only signing algorithm of engine tokens.
const Algorithm = "RS512"

// Claims are the verified claims of an engine token.
type Claims struct {
	Account   string
	Roles     []string // the account's roles when the token was issued
	ExpiresAt time.Time
	IssuedAt  time.Time // zero for tokens without iat
	ID        string    // jti; empty for tokens without one
	KeyID     string    // kid of the signing key; empty for tokens without one
}

// Options configure a Verifier. JWKSURL is required; zero values of the
// others take the defaults.
type Options struct {
	// JWKSURL is Gatehouse's key set, e.g.
	// https://gatehouse.example:30100/.well-known/jwks.json.
	JWKSURL string
	// HTTPClient fetches the key set [a client with a 10 s timeout].
	HTTPClient *http.Client
	// MinRefreshInterval is the least time between two fetches of the key
	// set [30s], but for the fetches of keys the feed announces, which
	// happen at once (see Feed).
	MinRefreshInterval time.Duration
	// MaxKeyAge is how long a fetched key set is used before it is
	// fetched again on the next verification [1h]. A failed fetch keeps
	// the old set.
	MaxKeyAge time.Duration
	// Leeway is the clock skew tolerated on exp [0].
	Leeway time.Duration
	// Now is the clock [time.Now].
	Now func() time.Time
	// Feed, when set, subscribes to the revocation feed; New then waits
	// for its first snapshot, and Close ends the subscription.
	Feed *Feed
}

func (o *Options) defaults() error {
	if o.JWKSURL == "" {
		return errors.New("verifier: JWKSURL is required")
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.MinRefreshInterval <= 0 {
		o.MinRefreshInterval = 30 * time.Second
	}
	if o.MaxKeyAge <= 0 {
		o.MaxKeyAge = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Feed != nil {
		f := *o.Feed
		o.Feed = &f
		return f.defaults()
	}
	return nil
}

// Verifier verifies engine tokens against Gatehouse's published keys. It
// is safe for concurrent use.
type Verifier struct {
	opts Options

	mu        sync.RWMutex
	fetched   keySet    // the set as last fetched
	fetchedAt time.Time // of fetched
	// listed are the key ids of the newest word on the keys: the feed's
	// last keys event, or the set fetched after it; nil before either.
	listed   map[string]bool
	dropped  map[string]bool // key ids the last keys event stopped listing
	listings uint64          // keys events received
	keys     keySet          // the keys that verify (see install and list)

	fetchMu   sync.Mutex // one fetch at a time
	lastFetch time.Time  // last attempt, successful or not

	// The fetches the feed's keys events ask for (fetchAnnounced).
	announceMu   sync.Mutex
	announced  map[string]bool // the ids of the last keys event listing a key not fetched
	fetchedFor map[string]bool // the announced ids the last such fetches were for
	announcing bool            // such fetches are running

	// With Options.Feed: what the feed said, how to stop following it
	// and the goroutines Close waits for.
	revs     *revocations
	stopFeed context.CancelFunc
	running  sync.WaitGroup
}

// keySet is an immutable set of public keys.
type keySet struct {
	keys []publicKey // in the order of the key set document
	byID map[string]*rsa.PublicKey
	all  jwt.VerificationKeySet // every key, in order: for tokens without kid
}

// publicKey is one key of a keySet; id is its kid, if any.
type publicKey struct {
	id  string
	pub *rsa.PublicKey
}

// newKeySet indexes keys.
func newKeySet(keys []publicKey) keySet {
	ks := keySet{keys: keys, byID: make(map[string]*rsa.PublicKey, len(keys))}
	for _, k := range keys {
		ks.all.Keys = append(ks.all.Keys, k.pub)
		if k.id != "" {
			ks.byID[k.id] = k.pub
		}
	}
	return ks
}

// where returns the keys of ks whose ids keep says to keep.
func (ks keySet) where(keep func(id string) bool) keySet {
	var kept []publicKey
	for _, k := range ks.keys {
		if keep(k.id) {
			kept = append(kept, k)
		}
	}
	return newKeySet(kept)
}

// lacks reports whether an id of ids is not in ks.
func (ks keySet) lacks(ids map[string]bool) bool {
	for id := range ids {
		if ks.byID[id] == nil {
			return true
		}
	}
	return false
}

// New fetches the key set once and, with Options.Feed, subscribes to the
// revocation feed and waits for its first snapshot; it fails when either
// does not happen before ctx ends or the set holds no usable key.
func New(ctx context.Context, opts Options) (*Verifier, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	v := &Verifier{opts: opts}
	if err := v.refresh(ctx, time.Time{}); err != nil {
		return nil, err
	}
	if opts.Feed != nil {
		if err := v.startFeed(ctx); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// VerifyHeader verifies the token of an Authorization header value
// ("Bearer <token>", scheme case-insensitive).
func (v *Verifier) VerifyHeader(ctx context.Context, authorization string) (*Claims, error) {
	if authorization == "" {
		return nil, ErrNoToken
	}
	scheme, tok, ok := strings.Cut(authorization, " ")
	if !ok || tok == "" || strings.Contains(tok, " ") || !strings.EqualFold(scheme, "Bearer") {
		return nil, ErrBadHeader
	}
	return v.Verify(ctx, tok)
}

// claims is the JSON form of an engine token's claims.
type claims struct {
	Account string   `json:"account"`
	Roles   []string `json:"roles"`
	jwt.RegisteredClaims
	// Cred is the credential version the token's login saw (absent from
	// Service Center's tokens); the revocation feed judges it.
	Cred *credential `json:"cred,omitempty"`
}

// credential is the cred claim: the account record and its watermark.
type credential struct {
	ID      string `json:"id"`
	Version int64  `json:"ver"`
}

// Verify checks token's form (package jwtform: one encoding, no crit
// header, numeric dates), its signature against the published keys, its
// algorithm (RS512 only), its exp and, with Options.Feed, that it is not
// revoked, and returns its claims. ctx bounds a fetch of the key set, if
// one is needed.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	v.refreshIfOld(ctx)
	var kid string
	c := new(claims)
	_, err := jwtform.ParseWithClaims(token, c, func(t *jwt.Token) (any, error) {
		k, id, err := v.key(ctx, t.Header["kid"])
		kid = id
		return k, err
	},
		jwt.WithValidMethods([]string{Algorithm}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(v.opts.Leeway),
		jwt.WithTimeFunc(v.opts.Now))
	switch {
	case errors.Is(err, ErrUnknownKey):
		return nil, ErrUnknownKey
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, ErrExpired
	case err != nil:
		return nil, fmt.Errorf("%w: %s", ErrInvalid, cause(err))
	case c.Account == "":
		return nil, fmt.Errorf("%w: no account claim", ErrInvalid)
	}
	if v.revs != nil {
		if err := v.checkFeed(c); err != nil {
			return nil, err
		}
	}
	out := &Claims{Account: c.Account, Roles: c.Roles, ExpiresAt: c.ExpiresAt.Time, ID: c.ID, KeyID: kid}
	if c.IssuedAt != nil {
		out.IssuedAt = c.IssuedAt.Time
	}
	return out, nil
}

// cause names why a token failed without echoing it.
func cause(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "bad signature"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "unverifiable (algorithm or key)"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "missing exp"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "not valid yet"
	}
	return "invalid"
}

// key returns the public key a token names, fetching the set again for
// an unknown kid (rate-limited) unless the feed's last keys event dropped
// it: no fetch brings such a key back (see install). A token without kid (Service Center's,
// signed by a key Gatehouse imported) is checked against every key that
// verifies, in the order of the key set, until one verifies its
// signature: the first key listed may be a pre-published one that signs
// nothing yet. Gatehouse checks such a token against its keys not yet
// retired and its imported keys, retired or not; the verifier cannot
// tell an imported key from another (neither the key set nor the feed
// says), so it also tries Gatehouse's own retired keys, which grants
// nothing more: those verify a token naming their kid anyway until they
// expire.
func (v *Verifier) key(ctx context.Context, rawKID any) (any, string, error) {
	if rawKID == nil {
		if ks := v.current().all; len(ks.Keys) > 0 {
			return ks, "", nil
		}
		return nil, "", ErrUnknownKey
	}
	kid, ok := rawKID.(string)
	if !ok {
		return nil, "", errors.New("kid is not a string")
	}
	if k := v.current().byID[kid]; k != nil {
		return k, kid, nil
	}
	if v.wasDropped(kid) {
		return nil, kid, ErrUnknownKey
	}
	if err := v.refresh(ctx, v.fetchedAtOf()); err != nil {
		return nil, kid, ErrUnknownKey
	}
	if k := v.current().byID[kid]; k != nil {
		return k, kid, nil
	}
	return nil, kid, ErrUnknownKey
}

func (v *Verifier) current() keySet {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.keys
}

// wasDropped reports whether the feed's last keys event dropped the key
// id.
func (v *Verifier) wasDropped(kid string) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.dropped[kid]
}

func (v *Verifier) fetchedAtOf() time.Time {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.fetchedAt
}

// refreshIfOld fetches the set again when it is older than MaxKeyAge;
// failure keeps the old set. It does not wait for a fetch another caller
// is making: the old set keeps serving meanwhile, so a slow or
// unreachable Gatehouse does not hold up verifications.
func (v *Verifier) refreshIfOld(ctx context.Context) {
	seen := v.fetchedAtOf()
	if v.opts.Now().Sub(seen) < v.opts.MaxKeyAge || !v.fetchMu.TryLock() {
		return
	}
	defer v.fetchMu.Unlock()
	_ = v.refreshLocked(ctx, seen)
}

// errTooSoon: a fetch was attempted less than MinRefreshInterval ago.
var errTooSoon = errors.New("verifier: key set fetched too recently")

// refresh fetches the key set unless another caller already replaced the
// set seen (fetched at seen) or the last attempt was too recent.
func (v *Verifier) refresh(ctx context.Context, seen time.Time) error {
	v.fetchMu.Lock()
	defer v.fetchMu.Unlock()
	return v.refreshLocked(ctx, seen)
}

// refreshLocked is refresh with v.fetchMu held.
func (v *Verifier) refreshLocked(ctx context.Context, seen time.Time) error {
	if !v.fetchedAtOf().Equal(seen) {
		return nil // someone else fetched meanwhile
	}
	now := v.opts.Now()
	if !v.lastFetch.IsZero() && now.Sub(v.lastFetch) < v.opts.MinRefreshInterval {
		return errTooSoon
	}
	v.lastFetch = now
	since := v.listingsOf()
	ks, err := v.fetch(ctx)
	if err != nil {
		return err
	}
	v.install(ks, now, since)
	return nil
}

// listingsOf returns the number of keys events received so far.
func (v *Verifier) listingsOf() uint64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.listings
}

// install makes ks the current set: fetched at now, by a fetch that
// started when since keys events had arrived. The newest word on the keys
// wins. A keys event that arrived during the fetch is newer than ks: only
// the keys it lists verify, so a fetch that started before it does not
// bring back a key it dropped. Otherwise ks is at least as new as the
// last event: its keys verify, a key created since (a scheduled or
// emergency rotation the feed has not told of, being down or slower)
// included, and its ids become the listing; only the keys the last event
// dropped stay out, should a replica still publish them.
func (v *Verifier) install(ks keySet, now time.Time, since uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.fetched, v.fetchedAt = ks, now
	if v.listings != since {
		v.keys = ks.where(func(id string) bool { return v.listed[id] })
		return
	}
	v.keys = ks.where(func(id string) bool { return !v.dropped[id] })
	v.listed = make(map[string]bool, len(v.keys.keys))
	for _, k := range v.keys.keys {
		v.listed[k.id] = true
	}
}

// list applies a keys event of the feed listing ids: from now on only
// listed keys verify, so a key the event no longer lists (an expiry, or
// a rotation that revoked it) stops verifying at once, until an event
// lists it again. It reports whether a listed key is missing from the
// fetched set.
func (v *Verifier) list(ids map[string]bool) (missing bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	dropped := map[string]bool{}
	for _, k := range v.fetched.keys {
		if !ids[k.id] {
			dropped[k.id] = true
		}
	}
	for id := range v.listed {
		if !ids[id] {
			dropped[id] = true
		}
	}
	v.listed, v.dropped = ids, dropped
	v.listings++
	v.keys = v.fetched.where(func(id string) bool { return ids[id] })
	return v.fetched.lacks(ids)
}

// lacks reports whether a key of ids is missing from the fetched set.
func (v *Verifier) lacks(ids map[string]bool) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.fetched.lacks(ids)
}

// maxJWKS bounds the size of a key set document.
const maxJWKS = 1 << 20

// fetch downloads and parses the key set, keeping RSA signing keys for
// RS512.
func (v *Verifier) fetch(ctx context.Context) (keySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.opts.JWKSURL, nil)
	if err != nil {
		return keySet{}, fmt.Errorf("verifier: %w", err)
	}
	resp, err := v.opts.HTTPClient.Do(req)
	if err != nil {
		return keySet{}, fmt.Errorf("verifier: fetch key set: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return keySet{}, fmt.Errorf("verifier: fetch key set: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKS))
	if err != nil {
		return keySet{}, fmt.Errorf("verifier: fetch key set: %w", err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return keySet{}, fmt.Errorf("verifier: parse key set: %w", err)
	}
	var keys []publicKey
	for _, k := range set.Keys {
		pub, ok := k.Key.(*rsa.PublicKey)
		if !ok || (k.Use != "" && k.Use != "sig") || (k.Algorithm != "" && k.Algorithm != Algorithm) {
			continue
		}
		keys = append(keys, publicKey{id: k.KeyID, pub: pub})
	}
	if len(keys) == 0 {
		return keySet{}, errors.New("verifier: the key set holds no RS512 signing key")
	}
	return newKeySet(keys), nil
}
