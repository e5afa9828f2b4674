// Package keyring owns Gatehouse's token signing keys: it generates or
// imports the RSA keys, keeps them in the store so that every replica
// signs with the same active key, rotates them, retires and finally
// deletes old keys, signs RS512 JWTs, resolves verification keys by kid
// and publishes the JWKS. It also hands out the server's shared secrets
// (see SharedSecret).
//
// The ring is a single store record under "keys/ring" holding every key,
// private half included (PKCS#8 PEM), because all replicas must be able
// to sign. Anyone who can read the store can therefore forge tokens: the
// store (the bolt file, the etcd cluster and its backups) must be
// protected like the keys themselves.
//
// A key id (kid) is the RFC 7638 JWK thumbprint (SHA-256, base64url) of
// the public key. A rotation normally pre-publishes the next key: it is in
// the JWKS at once but signs only from its activation time, a
// pre-publication time later, so that verifiers caching the JWKS know it
// before the first token it signs reaches them. Every replica signs with
// the newest key whose activation time has passed by its own clock, so
// all switch at the same instant (up to their clock skew, which the
// pre-publication makes harmless for verification). Keys move from
// pending to active to retired; a retired
// key keeps verifying until its expiry (retirement time plus
// Options.MaxTokenLifetime, fixed when it is retired), then it leaves the
// JWKS and is deleted from the store by whichever replica notices first.
//
// Every replica follows the ring through the store's change feed, so a
// rotation on one replica is seen by the others without polling. With
// scheduled rotation (Options.RotateEvery) every replica checks the
// schedule, and the one whose atomic update of the ring lands first
// publishes the next key; the others find it there and write nothing.
package keyring

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Algorithm is the JWS algorithm of every key in the ring.
const Algorithm = "RS512"

// Key statuses reported in KeyInfo.Status.
const (
	// StatusPending marks a pre-published key: in the JWKS, signing from
	// KeyInfo.Activates.
	StatusPending = "pending"
	// StatusActive marks the key new tokens are signed with.
	StatusActive = "active"
	// StatusRetired marks a key that only verifies, until KeyInfo.Expires.
	StatusRetired = "retired"
)

// Defaults applied by Open to zero Options fields.
const (
	// DefaultBits is the size of generated keys.
	DefaultBits = 2048
	// DefaultMaxTokenLifetime is how long a retired key keeps verifying.
	DefaultMaxTokenLifetime = 24 * time.Hour
	// MaxJWKSCacheLifetime is the longest time verifiers are told to cache
	// the JWKS (see Ring.CacheLifetime).
	MaxJWKSCacheLifetime = time.Minute
	// DefaultPrepublish is how long a new key is published before it
	// signs: twice the JWKS cache lifetime, so a verifier that fetched the
	// JWKS just before the publication and retries a failed refresh once
	// still knows the key in time.
	DefaultPrepublish = 2 * MaxJWKSCacheLifetime
	// MinRotateEvery bounds Options.RotateEvery from below: a retired key
	// stays in the JWKS for MaxTokenLifetime, so rotating faster than
	// hourly would grow the JWKS beyond some 25 keys.
	MinRotateEvery = time.Hour
	// scheduleCheck is how often scheduled rotation reads the clock
	// between due times, so that a clock step is followed soon.
	scheduleCheck = time.Second
)

// Errors returned by Sign and Keyfunc. Callers compare with errors.Is.
var (
	// ErrNotReady: no key ring has been loaded.
	ErrNotReady = errors.New("keyring: no signing key loaded")
	// ErrUnknownKey: no key with the token's kid can verify now (never
	// known, or retired and expired).
	ErrUnknownKey = errors.New("keyring: unknown key id")
	// ErrAlgorithm: the token's alg is not RS512.
	ErrAlgorithm = errors.New("keyring: signing algorithm is not " + Algorithm)
	// ErrBadKeyID: the token's kid header is not a string.
	ErrBadKeyID = errors.New("keyring: kid header is not a string")
)

// Options configures Open. The zero value is usable.
type Options struct {
	// Bits is the size of generated keys: 2048 (default), 3072 or 4096.
	Bits int
	// PrivateKeyPEM, when set, is an RSA private key to import, PEM-encoded
	// as PKCS#1 ("RSA PRIVATE KEY") or PKCS#8 ("PRIVATE KEY"), of 2048,
	// 3072 or 4096 bits whatever Bits says. On first start it becomes the
	// active key. If a ring already exists and the key is not one of its
	// keys that still verify, it becomes the active key and the previous
	// one is retired; if it is already in the ring (even retired), or was
	// and has expired since, nothing changes, so restarting with the same
	// file does not undo later rotations. An imported key verifies tokens
	// without kid (see Ring.Keyfunc).
	PrivateKeyPEM []byte
	// MaxTokenLifetime is how long a retired key keeps verifying: the
	// longest lifetime of a token it signed, plus any leeway verifiers
	// allow on exp. Default 24h.
	MaxTokenLifetime time.Duration
	// Prepublish is how long a rotated-in key is published in the JWKS
	// before it signs, unless a rotation asks to switch at once: at
	// least one second, default DefaultPrepublish. The JWKS cache
	// lifetime is never longer (see Ring.CacheLifetime).
	Prepublish time.Duration
	// RotateEvery, when set, rotates the signing key on this schedule:
	// each key signs for RotateEvery, its successor published Prepublish
	// before. At least MinRotateEvery and more than Prepublish; zero
	// (the default) rotates only on request.
	RotateEvery time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives key lifecycle events and store errors; default
	// discards. Key material is never logged.
	Logger *slog.Logger
}

// KeyInfo describes one key of the ring. Times are encoded in JSON as
// RFC 3339 strings; zero times are omitted. Activates is set for a key
// that was pre-published; Retired and Expires are set once the key's
// retirement is decided, which for the active key means a successor is
// pre-published and takes over at Retired.
type KeyInfo struct {
	ID        string    `json:"id"`
	Algorithm string    `json:"algorithm"`
	Bits      int       `json:"bits"`
	Created   time.Time `json:"created"`
	Status    string    `json:"status"`
	// Activates is when a pre-published key starts signing.
	Activates time.Time `json:"activates,omitzero"`
	Retired   time.Time `json:"retired,omitzero"`
	// Expires is when a retired key stops verifying and is deleted.
	Expires time.Time `json:"expires,omitzero"`
}

// Ring is the key ring of one replica. Its methods are safe for
// concurrent use.
type Ring struct {
	st          store.Store
	bits        int
	lifetime    time.Duration
	prepublish  time.Duration
	rotateEvery time.Duration
	now         func() time.Time
	log         *slog.Logger
	follower    *store.Follower
	cancel      context.CancelFunc
	loops       sync.WaitGroup

	view      atomic.Pointer[view]
	changed   chan struct{} // signalled when view changes
	withdrawn atomic.Uint64 // views that dropped a key (see Withdrawn)

	mu      sync.Mutex // serialises view rebuilds
	rec     ringRecord // the ring view was built from
	loadErr error      // why the last stored ring could not be loaded
	// shown is closed when the next view is shown (see KeysChanged).
	shown chan struct{}
}

// Open loads the key ring from st, creating it on first start (a
// generated key of opts.Bits, or opts.PrivateKeyPEM), and follows its
// changes until ctx is cancelled or Close is called. Replicas starting
// together end up with one ring and one active key.
func Open(ctx context.Context, st store.Store, opts Options) (*Ring, error) {
	r, imported, err := newRing(st, opts)
	if err != nil {
		return nil, err
	}
	if err := r.bootstrap(ctx, imported); err != nil {
		return nil, err
	}
	ctx, r.cancel = context.WithCancel(ctx)
	r.follower, err = store.Follow(ctx, st, keyPrefix, feed{r})
	if err != nil {
		r.cancel()
		return nil, fmt.Errorf("keyring: follow %s: %w", keyPrefix, err)
	}
	if r.view.Load().signing(r.now()) == nil {
		r.Close()
		return nil, r.unusable()
	}
	r.loops.Go(func() { r.expireLoop(ctx) })
	if r.rotateEvery > 0 {
		r.loops.Go(func() { r.rotateLoop(ctx) })
	}
	return r, nil
}

// unusable says why no ring could be loaded.
func (r *Ring) unusable() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.loadErr != nil {
		return r.loadErr
	}
	return errors.New("keyring: the store holds no key ring")
}

// newRing validates opts and returns an unloaded ring and the key to
// import, if any.
func newRing(st store.Store, opts Options) (*Ring, *rsa.PrivateKey, error) {
	r := &Ring{
		st:          st,
		bits:        opts.Bits,
		lifetime:    opts.MaxTokenLifetime,
		prepublish:  opts.Prepublish,
		rotateEvery: opts.RotateEvery,
		now:         opts.Now,
		log:         opts.Logger,
		changed:     make(chan struct{}, 1),
	}
	if r.bits == 0 {
		r.bits = DefaultBits
	}
	if err := checkBits(r.bits); err != nil {
		return nil, nil, err
	}
	if r.lifetime == 0 {
		r.lifetime = DefaultMaxTokenLifetime
	}
	if r.lifetime < 0 {
		return nil, nil, fmt.Errorf("keyring: negative MaxTokenLifetime %v", r.lifetime)
	}
	if r.prepublish == 0 {
		r.prepublish = DefaultPrepublish
	}
	if r.prepublish < time.Second {
		return nil, nil, fmt.Errorf("keyring: pre-publication time %v shorter than 1s", r.prepublish)
	}
	if r.rotateEvery != 0 && (r.rotateEvery < MinRotateEvery || r.rotateEvery <= r.prepublish) {
		return nil, nil, fmt.Errorf("keyring: rotation period %v must be at least %v and longer than the pre-publication time %v",
			r.rotateEvery, MinRotateEvery, r.prepublish)
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.view.Store(&view{jwks: []byte(`{"keys":[]}`)})
	if len(opts.PrivateKeyPEM) == 0 {
		return r, nil, nil
	}
	imported, err := parsePrivateKeyPEM(opts.PrivateKeyPEM)
	if err != nil {
		return nil, nil, err
	}
	return r, imported, nil
}

// bootstrap makes sure the store holds a ring: it activates the imported
// key unless the ring already holds it, or else creates a ring with a
// generated key if there is none.
func (r *Ring) bootstrap(ctx context.Context, imported *rsa.PrivateKey) error {
	if imported != nil {
		return r.importKey(ctx, imported)
	}
	_, err := r.st.Get(ctx, ringKey)
	if errors.Is(err, store.ErrNotFound) {
		return r.create(ctx)
	}
	if err != nil {
		return fmt.Errorf("keyring: read %s: %w", ringKey, err)
	}
	return nil
}

// importKey makes priv the active key, creating the ring if there is
// none, unless the ring already holds it.
func (r *Ring) importKey(ctx context.Context, priv *rsa.PrivateKey) error {
	res, err := r.putImported(ctx, priv, false)
	switch {
	case err != nil:
		return err
	case res.Outcome == ImportExpired:
		r.log.Warn("keyring: the key to import was rotated out and has expired; it is not used again", "kid", res.ID)
	case res.Outcome == ImportActivated:
		r.log.Info("keyring: imported key is now the active key", "kid", res.ID)
	}
	return nil
}

// Outcomes of an import, in ImportResult.Outcome.
const (
	// ImportActivated: the key became the active key.
	ImportActivated = "activated"
	// ImportPresent: the ring already holds the key; nothing changed.
	ImportPresent = "present"
	// ImportExpired: the key was rotated out and has expired; it is not
	// used again and nothing changed.
	ImportExpired = "expired"
)

// ImportResult says what an import did (or, dry, would do) with a key.
type ImportResult struct {
	ID      string // kid of the key
	Outcome string // ImportActivated, ImportPresent or ImportExpired
}

// Import makes the key of opts.PrivateKeyPEM the active key of the ring
// stored in st, exactly as Open does with it, without loading or
// following the ring: for offline tools. With dryRun it only reports
// what it would do. Replicas running on st follow the change.
func Import(ctx context.Context, st store.Store, opts Options, dryRun bool) (ImportResult, error) {
	r, priv, err := newRing(st, opts)
	if err != nil {
		return ImportResult{}, err
	}
	if priv == nil {
		return ImportResult{}, errors.New("keyring: no private key to import")
	}
	return r.putImported(ctx, priv, dryRun)
}

// putImported activates priv as an imported key unless the ring holds it
// or held it once; with dryRun it writes nothing.
func (r *Ring) putImported(ctx context.Context, priv *rsa.PrivateKey, dryRun bool) (ImportResult, error) {
	k, err := newKeyRecord(priv, r.now())
	if err != nil {
		return ImportResult{}, err
	}
	k.Imported = true
	res := ImportResult{ID: k.ID, Outcome: ImportActivated}
	if dryRun {
		var cur *store.Item
		it, gerr := r.st.Get(ctx, ringKey)
		switch {
		case gerr == nil:
			cur = &it
		case !errors.Is(gerr, store.ErrNotFound):
			return res, fmt.Errorf("keyring: read %s: %w", ringKey, gerr)
		}
		rec, derr := decodeRing(cur)
		if derr != nil {
			return res, derr
		}
		_, err = rec.activated(k, r.now(), r.lifetime, false)
	} else {
		_, err = r.activate(ctx, k, false)
	}
	switch {
	case errors.Is(err, errKeyPresent):
		res.Outcome = ImportPresent
	case errors.Is(err, errKeyExpired):
		res.Outcome = ImportExpired
	case err != nil:
		return res, fmt.Errorf("keyring: import key: %w", err)
	}
	return res, nil
}

// create stores a new ring with a generated key, unless another replica
// created one first.
func (r *Ring) create(ctx context.Context) error {
	priv, err := generateKey(r.bits)
	if err != nil {
		return err
	}
	k, err := newKeyRecord(priv, r.now())
	if err != nil {
		return err
	}
	it, err := ringRecord{Keys: []keyRecord{k}}.item()
	if err != nil {
		return err
	}
	_, err = r.st.Create(ctx, *it)
	switch {
	case errors.Is(err, store.ErrExists):
		return nil
	case err != nil:
		return fmt.Errorf("keyring: create %s: %w", ringKey, err)
	}
	r.log.Info("keyring: created key ring", "kid", k.ID)
	return nil
}

// activate makes k the active key of the stored ring at once (creating
// the ring if there is none), retiring the previous one or, with revoke,
// expiring every earlier key, and returns the stored ring item. It fails
// with errKeyPresent if the ring already holds k.
func (r *Ring) activate(ctx context.Context, k keyRecord, revoke bool) (store.Item, error) {
	now := r.now()
	return r.st.Update(ctx, ringKey, func(cur *store.Item) (*store.Item, error) {
		rec, err := decodeRing(cur)
		if err != nil {
			return nil, err
		}
		next, err := rec.activated(k, now, r.lifetime, revoke)
		if err != nil {
			return nil, err
		}
		return next.item()
	})
}

// Close stops following the store and returns once the ring's goroutines
// have ended. The ring keeps answering with the keys it last loaded.
func (r *Ring) Close() {
	r.cancel()
	r.follower.Stop()
	r.loops.Wait()
}

// Ready reports whether the ring has an active key and is following the
// store.
func (r *Ring) Ready() bool {
	return r.view.Load().signing(r.now()) != nil && r.follower.Healthy()
}

// Sign returns claims as a JWT signed RS512 with the active key, with
// header {"alg":"RS512","kid":<active kid>,"typ":"JWT"}. The active key is
// the newest key whose activation time has passed by this replica's clock.
func (r *Ring) Sign(claims jwt.Claims) (string, error) {
	active := r.view.Load().signing(r.now())
	if active == nil {
		return "", ErrNotReady
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS512, claims)
	t.Header["kid"] = active.info.ID
	return t.SignedString(active.priv)
}

// Keyfunc is a jwt.Keyfunc returning the public key a token must be
// verified with: the ring key named by its kid, provided that key can
// still verify. Tokens signed by an imported Service Center key carry no
// kid: a token without kid is checked against the keys not yet retired
// and every imported key that can still verify, so that after a rotation
// the retired Service Center key keeps verifying them until it expires.
// Tokens whose alg is not RS512 are refused; callers should also parse
// with jwt.WithValidMethods([]string{"RS512"}).
func (r *Ring) Keyfunc(t *jwt.Token) (any, error) {
	if t.Method == nil || t.Method.Alg() != Algorithm {
		return nil, ErrAlgorithm
	}
	v := r.view.Load()
	raw, ok := t.Header["kid"]
	if !ok {
		if len(v.keys) == 0 {
			return nil, ErrNotReady
		}
		now := r.now()
		var set jwt.VerificationKeySet
		for _, s := range v.keys {
			if (s.imported || s.status(now) != StatusRetired) && (s.info.Expires.IsZero() || now.Before(s.info.Expires)) {
				set.Keys = append(set.Keys, &s.priv.PublicKey)
			}
		}
		return set, nil
	}
	kid, ok := raw.(string)
	if !ok {
		return nil, ErrBadKeyID
	}
	s := v.byID[kid]
	if s == nil || (!s.info.Expires.IsZero() && !r.now().Before(s.info.Expires)) {
		return nil, ErrUnknownKey
	}
	return &s.priv.PublicKey, nil
}

// JWKS returns the JSON Web Key Set of every key that can still verify,
// newest first (a pre-published key, then the active key, then retired
// keys): {"keys":[{"kty":"RSA","kid",...,"alg":"RS512","use":"sig","n",
// "e"}]}. The slice is shared and must not be modified.
func (r *Ring) JWKS() []byte {
	return r.view.Load().jwks
}

// CacheLifetime is how long verifiers may cache the JWKS: never longer
// than the pre-publication time, so that a verifier refreshing at this
// lifetime knows every key before it signs; at most MaxJWKSCacheLifetime.
func (r *Ring) CacheLifetime() time.Duration {
	return min(r.prepublish, MaxJWKSCacheLifetime)
}

// Withdrawn counts the times a key stopped verifying on this replica
// (it expired, or a rotation revoked it). A cache of tokens verified with
// the ring's keys must verify again a token it cached before the count
// last changed, so that a revoked key's tokens are refused at once.
func (r *Ring) Withdrawn() uint64 {
	return r.withdrawn.Load()
}

// Keys describes every key that can still verify, newest first, with
// its status at the current time.
func (r *Ring) Keys() []KeyInfo {
	keys := r.view.Load().keys
	now := r.now()
	infos := make([]KeyInfo, len(keys))
	for i, s := range keys {
		infos[i] = s.info
		infos[i].Status = s.status(now)
	}
	return infos
}

// RotateOptions choose how Ring.RotateWith switches keys.
type RotateOptions struct {
	// Immediate makes the new key sign at once instead of after the
	// pre-publication time: for emergencies such as a key compromise,
	// at the price of verifiers with a cached JWKS refusing the new
	// key's tokens until they refresh it.
	Immediate bool
	// Revoke, with Immediate, expires every earlier key at once: tokens
	// they signed stop verifying everywhere the ring is followed.
	Revoke bool
}

// ErrRevokeNeedsImmediate: RotateOptions.Revoke without Immediate.
var ErrRevokeNeedsImmediate = errors.New("keyring: revoking the earlier keys needs an immediate rotation")

// KeysChanged returns a channel closed once the keys Keys describes may
// have changed: when the next view of the ring is shown.
func (r *Ring) KeysChanged() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.shown == nil {
		r.shown = make(chan struct{})
	}
	return r.shown
}

// Rotate makes a new key sign at once and retires the previous one: an
// immediate rotation without revocation (see RotateWith).
func (r *Ring) Rotate(ctx context.Context) (KeyInfo, error) {
	return r.RotateWith(ctx, RotateOptions{Immediate: true})
}

// RotateWith generates a new key. By default it is pre-published: it
// signs from the pre-publication time on, and the active key until then;
// if a key is already waiting to sign, that key is returned and nothing
// changes. With o.Immediate it signs at once and the key waiting to sign,
// if any, is dropped. It is atomic with respect to rotations on other
// replicas, and returns once this ring has loaded the new ring (unless a
// later rotation has already replaced it).
func (r *Ring) RotateWith(ctx context.Context, o RotateOptions) (KeyInfo, error) {
	if o.Revoke && !o.Immediate {
		return KeyInfo{}, ErrRevokeNeedsImmediate
	}
	var (
		it  store.Item
		err error
		kid string
	)
	if o.Immediate {
		kid, it, err = r.rotateNow(ctx, o.Revoke)
	} else {
		kid, it, err = r.publishNext(ctx, func(ringRecord, time.Time) (time.Time, bool) {
			return r.now().Add(r.prepublish), true
		})
	}
	if err != nil {
		return KeyInfo{}, fmt.Errorf("keyring: rotate: %w", err)
	}
	if err := r.follower.WaitFor(ctx, it.Revision); err != nil {
		return KeyInfo{}, fmt.Errorf("keyring: rotate: %w", err)
	}
	s := r.view.Load().byID[kid]
	if s == nil {
		return KeyInfo{}, fmt.Errorf("keyring: rotate: key %s was replaced by a later rotation", kid)
	}
	info := s.info
	info.Status = s.status(r.now())
	return info, nil
}

// rotateNow stores a new key signing from now on, and returns its id and
// the stored ring.
func (r *Ring) rotateNow(ctx context.Context, revoke bool) (string, store.Item, error) {
	k, err := r.generate()
	if err != nil {
		return "", store.Item{}, err
	}
	it, err := r.activate(ctx, k, revoke)
	if err != nil {
		return "", it, err
	}
	r.log.Info("keyring: rotated signing key at once", "kid", k.ID, "revoked_earlier_keys", revoke)
	return k.ID, it, nil
}

// publishNext stores a new key signing from the time when says, unless
// when says no rotation is due or a key is already waiting to sign. It
// returns the id of the key waiting to sign (new or not) and the stored
// ring; none if when said nothing is due.
func (r *Ring) publishNext(ctx context.Context, when func(rec ringRecord, now time.Time) (time.Time, bool)) (string, store.Item, error) {
	k, err := r.generate()
	if err != nil {
		return "", store.Item{}, err
	}
	var waiting string
	var at time.Time
	it, err := r.st.Update(ctx, ringKey, func(cur *store.Item) (*store.Item, error) {
		rec, err := decodeRing(cur)
		if err != nil {
			return nil, err
		}
		now := r.now()
		if p := rec.pending(now); p != nil {
			waiting = p.ID
			return nil, errPending
		}
		var due bool
		if at, due = when(rec, now); !due {
			return nil, errUnchanged
		}
		next, err := rec.prepublished(k, at, now, r.lifetime)
		if err != nil {
			return nil, err
		}
		return next.item()
	})
	switch {
	case errors.Is(err, errPending):
		// Another rotation got there first; its key is the next one.
		cur, gerr := r.st.Get(ctx, ringKey)
		return waiting, cur, gerr
	case errors.Is(err, errUnchanged):
		return "", store.Item{}, nil
	case err != nil:
		return "", it, err
	}
	r.log.Info("keyring: published the next signing key", "kid", k.ID, "activates", at)
	return k.ID, it, nil
}

// generate makes a new key record created now.
func (r *Ring) generate() (keyRecord, error) {
	priv, err := generateKey(r.bits)
	if err != nil {
		return keyRecord{}, err
	}
	return newKeyRecord(priv, r.now())
}

// rotateLoop publishes the next key when the schedule says so, until ctx
// ends. It reads the clock every scheduleCheck rather than sleeping until
// the due time, so that clock steps (and settable test clocks) are
// followed.
func (r *Ring) rotateLoop(ctx context.Context) {
	t := time.NewTicker(scheduleCheck)
	defer t.Stop()
	for {
		r.rotateIfDue(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// rotateIfDue publishes the next key if the schedule says it is time.
// Every replica does this; the atomic update of the ring lets exactly one
// of them publish the key, the others find it waiting and write nothing.
func (r *Ring) rotateIfDue(ctx context.Context) {
	r.mu.Lock()
	_, due := r.rec.rotationDue(r.now(), r.rotateEvery, r.prepublish)
	r.mu.Unlock()
	if !due {
		return
	}
	_, _, err := r.publishNext(ctx, func(rec ringRecord, now time.Time) (time.Time, bool) {
		return rec.rotationDue(now, r.rotateEvery, r.prepublish)
	})
	if err != nil && ctx.Err() == nil {
		r.log.Warn("keyring: scheduled rotation failed; retrying", "err", err)
	}
}
