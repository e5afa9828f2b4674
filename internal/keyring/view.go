package keyring

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/store"
)

// signer is one parsed key of the ring. Its info holds no status: the
// status depends on the time it is asked at (see status).
type signer struct {
	info     KeyInfo
	priv     *rsa.PrivateKey
	imported bool
}

// status says whether the key waits to sign, signs or only verifies at
// now. A key that was not pre-published signs from its creation on.
func (s *signer) status(now time.Time) string {
	switch {
	case !s.info.Activates.IsZero() && now.Before(s.info.Activates):
		return StatusPending
	case !s.info.Retired.IsZero() && !now.Before(s.info.Retired):
		return StatusRetired
	}
	return StatusActive
}

// view is an immutable snapshot of the keys that can verify, built from
// the stored ring whenever it changes or a retired key expires. Readers
// load it without locking; which key signs is decided at each signature
// by the clock (see signing), so that every replica switches at a key's
// activation time without waiting for a rebuild.
type view struct {
	keys []*signer          // every key that can still verify, newest first
	byID map[string]*signer // the same keys by kid
	jwks []byte
	next time.Time // earliest expiry of a retired key; zero if none
}

// signing returns the key that signs at now: the newest key activated
// and not yet retired at now; nil if none (no ring loaded).
func (v *view) signing(now time.Time) *signer {
	for _, s := range v.keys {
		if s.status(now) == StatusActive {
			return s
		}
	}
	return nil
}

// buildView parses the keys of rec live at now. Keys already parsed in
// prev are reused.
func buildView(rec ringRecord, now time.Time, prev *view) (*view, error) {
	live, _ := rec.pruned(now)
	v := &view{byID: make(map[string]*signer, len(live.Keys))}
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(live.Keys))}
	var newest *signer
	for _, k := range live.Keys {
		if _, dup := v.byID[k.ID]; dup {
			return nil, fmt.Errorf("keyring: key %s appears twice in the ring", k.ID)
		}
		s, err := prev.signer(k)
		if err != nil {
			return nil, err
		}
		if k.Retired.IsZero() {
			if newest != nil {
				return nil, fmt.Errorf("keyring: ring has two active keys (%s, %s)", newest.info.ID, k.ID)
			}
			newest = s
		} else if v.next.IsZero() || k.Expires.Before(v.next) {
			v.next = k.Expires
		}
		v.byID[k.ID] = s
		v.keys = append(v.keys, s)
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &s.priv.PublicKey, KeyID: k.ID, Algorithm: Algorithm, Use: "sig"})
	}
	if newest == nil && len(live.Keys) > 0 {
		return nil, errors.New("keyring: ring has no active key")
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("keyring: encode JWKS: %w", err)
	}
	v.jwks = jwks
	return v, nil
}

// signer returns the parsed key k, reusing v's copy when it has one.
func (v *view) signer(k keyRecord) (*signer, error) {
	var priv *rsa.PrivateKey
	if known := v.byID[k.ID]; known != nil {
		priv = known.priv
	} else {
		parsed, err := parseStoredKey(k)
		if err != nil {
			return nil, err
		}
		priv = parsed
	}
	info := KeyInfo{
		ID:        k.ID,
		Algorithm: Algorithm,
		Bits:      priv.N.BitLen(),
		Created:   k.Created,
		Activates: k.Activates,
		Retired:   k.Retired,
		Expires:   k.Expires,
	}
	return &signer{info: info, priv: priv, imported: k.Imported}, nil
}

// parseStoredKey decodes the private key of k and checks that it matches
// the key id.
func parseStoredKey(k keyRecord) (*rsa.PrivateKey, error) {
	priv, err := parsePrivateKeyPEM([]byte(k.PrivateKey))
	if err != nil {
		return nil, fmt.Errorf("keyring: stored key %s: %w", k.ID, err)
	}
	id, err := keyID(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	if id != k.ID {
		return nil, fmt.Errorf("keyring: stored key %s has thumbprint %s", k.ID, id)
	}
	return priv, nil
}

// feed receives the store's change feed for the ring.
type feed struct{ r *Ring }

// Reset loads the ring from a full listing of the key prefix.
func (f feed) Reset(items []store.Item) {
	for i := range items {
		if items[i].Key == ringKey {
			f.r.load(&items[i])
			return
		}
	}
	f.r.load(nil)
}

// Apply loads the ring after a change to it.
func (f feed) Apply(ev store.Event) {
	if ev.Item.Key != ringKey {
		return
	}
	if ev.Type == store.EventDelete {
		f.r.log.Error("keyring: key ring deleted from the store; signing stops until a key is rotated in")
		f.r.load(nil)
		return
	}
	f.r.load(&ev.Item)
}

// load replaces the ring with the stored item (nil: no ring). An
// unreadable ring is logged and the previous keys stay in use.
func (r *Ring) load(it *store.Item) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, err := decodeRing(it)
	if err == nil {
		err = r.showLocked(rec)
	}
	r.loadErr = err
	if err != nil {
		r.log.Error("keyring: cannot load key ring; keeping the previous keys", "err", err)
	}
}

// showLocked publishes the view of rec at the current time. r.mu held.
func (r *Ring) showLocked(rec ringRecord) error {
	v, err := buildView(rec, r.now(), r.view.Load())
	if err != nil {
		return err
	}
	r.rec = rec
	if prev := r.view.Swap(v); prev != nil {
		for id := range prev.byID {
			if v.byID[id] == nil {
				r.withdrawn.Add(1)
				break
			}
		}
	}
	if r.shown != nil {
		close(r.shown)
		r.shown = nil
	}
	select {
	case r.changed <- struct{}{}:
	default:
	}
	return nil
}

// expireLoop drops retired keys when they stop verifying, until ctx ends.
func (r *Ring) expireLoop(ctx context.Context) {
	for {
		var fire <-chan time.Time
		if next := r.view.Load().next; !next.IsZero() {
			fire = time.After(next.Sub(r.now()))
		}
		select {
		case <-ctx.Done():
			return
		case <-r.changed:
		case <-fire:
			r.expire(ctx)
		}
	}
}

// expire removes expired keys from the local view at once, then from the
// store. Every replica does this; the first write wins and the others find
// nothing to remove. If the store write fails, the keys are removed from
// the store by the next expiry or rotation.
func (r *Ring) expire(ctx context.Context) {
	r.mu.Lock()
	err := r.showLocked(r.rec)
	r.mu.Unlock()
	if err != nil {
		r.log.Error("keyring: cannot refresh key ring", "err", err)
	}
	now := r.now()
	_, err = r.st.Update(ctx, ringKey, func(cur *store.Item) (*store.Item, error) {
		rec, err := decodeRing(cur)
		if err != nil {
			return nil, err
		}
		live, changed := rec.pruned(now)
		if !changed {
			return nil, errUnchanged
		}
		return live.item()
	})
	if err != nil && !errors.Is(err, errUnchanged) && ctx.Err() == nil {
		r.log.Warn("keyring: cannot delete expired keys from the store", "err", err)
	}
}
