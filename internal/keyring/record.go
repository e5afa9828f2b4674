package keyring

import (
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Store layout: the whole ring is one record, so that creating it,
// rotating and pruning are each a single atomic write.
const (
	keyPrefix = "keys/"
	ringKey   = keyPrefix + "ring"
)

// errKeyPresent aborts an activation whose key is already in the ring.
var errKeyPresent = errors.New("keyring: key already in the ring")

// errKeyExpired aborts an activation whose key was in the ring once and
// has expired since.
var errKeyExpired = errors.New("keyring: key retired and expired earlier")

// errUnchanged aborts a prune that has nothing to remove.
var errUnchanged = errors.New("keyring: nothing to prune")

// errPending aborts a pre-published rotation or a scheduled one while
// the ring already holds a key waiting to sign.
var errPending = errors.New("keyring: a key is already waiting to sign")

// ringRecord is the stored key ring: newest key first, exactly one key
// without a retirement time (the newest one: the key that signs, or the
// pre-published key that will, in which case the key signing until then
// carries that key's activation time as its retirement time). Expired
// holds the ids of
// the keys deleted from the ring once they stopped verifying, so that
// such a key (say, one rotated out after a compromise) never becomes
// active again, for instance by a restart with the --private-key that
// imported it.
type ringRecord struct {
	Keys    []keyRecord `json:"keys"`
	Expired []string    `json:"expired,omitempty"`
}

// keyRecord is one stored key. Expires is the instant the retired key
// stops verifying; it is fixed at retirement so every replica agrees on it.
type keyRecord struct {
	ID      string    `json:"kid"`
	Created time.Time `json:"created"`
	// Activates is when a pre-published key starts signing; zero for a
	// key that signed from its creation. Every replica switches at this
	// instant by its own clock.
	Activates  time.Time `json:"activates,omitzero"`
	Retired    time.Time `json:"retired,omitzero"`
	Expires    time.Time `json:"expires,omitzero"`
	PrivateKey string    `json:"privateKey"` // PKCS#8 PEM
	// Imported marks a key that came from outside (an imported Service
	// Center key): it verifies tokens without kid, retired or not, until
	// it expires.
	Imported bool `json:"imported,omitempty"`
}

// newKeyRecord describes priv as a new, active key created at now.
func newKeyRecord(priv *rsa.PrivateKey, now time.Time) (keyRecord, error) {
	id, err := keyID(&priv.PublicKey)
	if err != nil {
		return keyRecord{}, err
	}
	pemText, err := encodePrivateKeyPEM(priv)
	if err != nil {
		return keyRecord{}, err
	}
	return keyRecord{ID: id, Created: now.UTC(), PrivateKey: pemText}, nil
}

// activation is when the key starts (or started) signing.
func (k keyRecord) activation() time.Time {
	if k.Activates.IsZero() {
		return k.Created
	}
	return k.Activates
}

// waiting reports whether the key is pre-published and does not sign yet
// at now. A key that was not pre-published signs from its creation on,
// whatever the clock says.
func (k keyRecord) waiting(now time.Time) bool {
	return k.Retired.IsZero() && !k.Activates.IsZero() && now.Before(k.Activates)
}

// retiredAt reports whether the key has stopped signing at now.
func (k keyRecord) retiredAt(now time.Time) bool {
	return !k.Retired.IsZero() && !now.Before(k.Retired)
}

// expired reports whether the key can no longer verify at now.
func (k keyRecord) expired(now time.Time) bool {
	return !k.Expires.IsZero() && !now.Before(k.Expires)
}

// decodeRing reads a stored ring; a nil item is an empty ring.
func decodeRing(it *store.Item) (ringRecord, error) {
	var rec ringRecord
	if it == nil {
		return rec, nil
	}
	if err := json.Unmarshal(it.Value, &rec); err != nil {
		return rec, fmt.Errorf("keyring: decode %s: %w", ringKey, err)
	}
	return rec, nil
}

// item encodes the ring as a store item.
func (rec ringRecord) item() (*store.Item, error) {
	value, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("keyring: encode %s: %w", ringKey, err)
	}
	return &store.Item{Key: ringKey, Value: value}, nil
}

// pruned returns the ring without the keys expired at now, their ids
// added to Expired, and whether any were removed.
func (rec ringRecord) pruned(now time.Time) (ringRecord, bool) {
	out := ringRecord{Keys: make([]keyRecord, 0, len(rec.Keys)), Expired: slices.Clone(rec.Expired)}
	for _, k := range rec.Keys {
		if k.expired(now) {
			out.Expired = append(out.Expired, k.ID)
		} else {
			out.Keys = append(out.Keys, k)
		}
	}
	return out, len(out.Keys) != len(rec.Keys)
}

// pending returns the key of the ring waiting to sign at now, if any.
func (rec ringRecord) pending(now time.Time) *keyRecord {
	for i, k := range rec.Keys {
		if k.waiting(now) {
			return &rec.Keys[i]
		}
	}
	return nil
}

// activated returns the ring with next as its active key from now on:
// the key signing until now is retired at now and verifies until
// now+lifetime, a key waiting to sign is dropped (it signed nothing),
// expired keys are dropped. With revoke, every earlier key is expired at
// once instead, so that nothing it signed verifies any more. It fails
// with errKeyPresent if next is already in the ring, and with
// errKeyExpired if it was and has expired.
func (rec ringRecord) activated(next keyRecord, now time.Time, lifetime time.Duration, revoke bool) (ringRecord, error) {
	live, _ := rec.pruned(now)
	if slices.Contains(live.Expired, next.ID) {
		return ringRecord{}, errKeyExpired
	}
	keys := append(make([]keyRecord, 0, len(live.Keys)+1), next)
	for _, k := range live.Keys {
		if k.ID == next.ID {
			return ringRecord{}, errKeyPresent
		}
		if k.waiting(now) {
			continue
		}
		if !k.retiredAt(now) {
			k.Retired = now.UTC()
			k.Expires = k.Retired.Add(lifetime)
		}
		if revoke {
			k.Expires = now.UTC()
		}
		keys = append(keys, k)
	}
	out, _ := ringRecord{Keys: keys, Expired: live.Expired}.pruned(now)
	return out, nil
}

// prepublished returns the ring with next published now and signing from
// activates on: the key signing until then is retired at activates and
// verifies until activates+lifetime. Expired keys are dropped. It fails
// with errPending if a key is already waiting to sign, and with
// errKeyPresent if next is already in the ring.
func (rec ringRecord) prepublished(next keyRecord, activates, now time.Time, lifetime time.Duration) (ringRecord, error) {
	live, _ := rec.pruned(now)
	if live.pending(now) != nil {
		return ringRecord{}, errPending
	}
	next.Activates = activates.UTC()
	keys := append(make([]keyRecord, 0, len(live.Keys)+1), next)
	for _, k := range live.Keys {
		if k.ID == next.ID {
			return ringRecord{}, errKeyPresent
		}
		if k.Retired.IsZero() {
			k.Retired = next.Activates
			k.Expires = k.Retired.Add(lifetime)
		}
		keys = append(keys, k)
	}
	return ringRecord{Keys: keys, Expired: live.Expired}, nil
}

// rotationDue says whether scheduled rotation every period, pre-publishing
// each key prepublish ahead, must publish the next key at now, and when
// that key starts signing: one period after the current key started, or
// prepublish from now if that is later (the schedule was missed, say
// while every replica was down). Nothing is due while a key is waiting.
func (rec ringRecord) rotationDue(now time.Time, period, prepublish time.Duration) (time.Time, bool) {
	if rec.pending(now) != nil {
		return time.Time{}, false
	}
	for _, k := range rec.Keys {
		if k.Retired.IsZero() {
			at := k.activation().Add(period)
			if now.Before(at.Add(-prepublish)) {
				return time.Time{}, false
			}
			if earliest := now.Add(prepublish); at.Before(earliest) {
				at = earliest
			}
			return at, true
		}
	}
	return time.Time{}, false
}
