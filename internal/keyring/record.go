package keyring

import (
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
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

// errUnchanged aborts a prune that has nothing to remove.
var errUnchanged = errors.New("keyring: nothing to prune")

// ringRecord is the stored key ring: newest key first, exactly one key
// without a retirement time (the active one).
type ringRecord struct {
	Keys []keyRecord `json:"keys"`
}

// keyRecord is one stored key. Expires is the instant the retired key
// stops verifying; it is fixed at retirement so every replica agrees on it.
type keyRecord struct {
	ID         string    `json:"kid"`
	Created    time.Time `json:"created"`
	Retired    time.Time `json:"retired,omitzero"`
	Expires    time.Time `json:"expires,omitzero"`
	PrivateKey string    `json:"privateKey"` // PKCS#8 PEM
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

// pruned returns the ring without the keys expired at now, and whether
// any were removed.
func (rec ringRecord) pruned(now time.Time) (ringRecord, bool) {
	kept := make([]keyRecord, 0, len(rec.Keys))
	for _, k := range rec.Keys {
		if !k.expired(now) {
			kept = append(kept, k)
		}
	}
	return ringRecord{Keys: kept}, len(kept) != len(rec.Keys)
}

// activated returns the ring with next as its active key: the previous
// active key is retired at now and verifies until now+lifetime, expired
// keys are dropped. It fails with errKeyPresent if next is already in the
// ring.
func (rec ringRecord) activated(next keyRecord, now time.Time, lifetime time.Duration) (ringRecord, error) {
	live, _ := rec.pruned(now)
	keys := append(make([]keyRecord, 0, len(live.Keys)+1), next)
	for _, k := range live.Keys {
		if k.ID == next.ID {
			return ringRecord{}, errKeyPresent
		}
		if k.Retired.IsZero() {
			k.Retired = now.UTC()
			k.Expires = k.Retired.Add(lifetime)
		}
		keys = append(keys, k)
	}
	return ringRecord{Keys: keys}, nil
}
