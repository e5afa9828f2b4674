// Package password owns the engine's password hashing and its account
// password and name policy.
//
// New passwords are hashed with argon2id into PHC strings. Verification also
// accepts bcrypt hashes and Apache ServiceComb Service Center's scrypt
// hashes, so that accounts migrated from Service Center keep working; such
// hashes, and argon2id hashes made with other parameters, are reported as
// needing a re-hash after a successful verification.
package password

import (
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"strings"
)

// ErrInvalidHash is returned by Hasher.Verify for a stored hash that is
// malformed, of an unsupported kind, or whose parameters are out of bounds.
var ErrInvalidHash = errors.New("password: invalid or unsupported hash")

// Hasher hashes passwords with argon2id and verifies stored hashes. It is
// immutable after construction and safe for concurrent use.
//
// At most GOMAXPROCS hashes are computed at once; more callers wait their
// turn. Running more at once would only interleave them on the same
// cores, each taking longer while their memory (m KiB each) evicts the
// others' from the caches.
type Hasher struct {
	params Params
	dummy  string        // argon2id hash of a random password, for VerifyDummy
	slots  chan struct{} // one per hash being computed
}

// NewHasher returns a Hasher producing hashes with p, which must pass
// p.Validate. It computes one hash to prepare VerifyDummy.
func NewHasher(p Params) (*Hasher, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	h := &Hasher{params: p, slots: make(chan struct{}, runtime.GOMAXPROCS(0))}
	dummy, err := h.Hash(rand.Text())
	if err != nil {
		return nil, err
	}
	h.dummy = dummy
	return h, nil
}

// Hash returns the argon2id PHC string of pw with a fresh random salt, for
// example $argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>, salt and key in
// unpadded standard base64.
func (h *Hasher) Hash(pw string) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: reading salt: %w", err)
	}
	defer h.acquire()()
	return encodeArgon2id(h.params, salt, deriveArgon2id(pw, salt, h.params)), nil
}

// Verify reports whether pw matches the stored hash encoded, which may be an
// argon2id PHC string, a bcrypt hash ($2a$, $2b$, $2y$) or a Service Center
// scrypt hash (N$r$p$<hex salt>$<hex key>). rehash is true only when ok is
// true and encoded is not an argon2id hash with the Hasher's parameters; the
// caller should then store a fresh Hash of pw. A malformed or unsupported
// hash yields an error wrapping ErrInvalidHash and ok false.
func (h *Hasher) Verify(pw, encoded string) (ok, rehash bool, err error) {
	defer h.acquire()()
	current := false
	switch {
	case strings.HasPrefix(encoded, argon2idPrefix):
		var p Params
		ok, p, err = verifyArgon2id(pw, encoded)
		current = p == h.params
	case isBcrypt(encoded):
		ok, err = verifyBcrypt(pw, encoded)
	default:
		ok, err = verifyScrypt(pw, encoded)
	}
	return ok, ok && !current, err
}

// acquire waits for a free hashing slot and returns the function that
// frees it.
func (h *Hasher) acquire() (release func()) {
	h.slots <- struct{}{}
	return func() { <-h.slots }
}

// VerifyDummy spends the time of a failed Verify against an argon2id hash at
// the Hasher's parameters. Call it for unknown account names so that they
// cannot be told apart from wrong passwords by timing.
func (h *Hasher) VerifyDummy(pw string) {
	_, _, _ = h.Verify(pw, h.dummy)
}
