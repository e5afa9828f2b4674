package password

import (
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"
)

// bcryptPrefixes are the bcrypt variants accepted for verification; they
// differ only in historical bug fixes of other implementations.
var bcryptPrefixes = []string{"$2a$", "$2b$", "$2y$"}

// maxBcryptCost bounds the cost of a stored bcrypt hash (2^16 rounds, a few
// seconds); bcrypt itself allows 31.
const maxBcryptCost = 16

// Ceilings on stored scrypt hashes: N at most 2^20, memory (128·N·r bytes)
// at most 1 GiB, and work N·r·p at most 2^24.
const (
	maxScryptN    = 1 << 20
	maxScryptNR   = 1 << 23
	maxScryptWork = 1 << 24
)

// isBcrypt reports whether encoded looks like a bcrypt hash.
func isBcrypt(encoded string) bool {
	for _, prefix := range bcryptPrefixes {
		if strings.HasPrefix(encoded, prefix) {
			return true
		}
	}
	return false
}

// verifyBcrypt checks pw against a bcrypt hash.
func verifyBcrypt(pw, encoded string) (bool, error) {
	cost, err := bcrypt.Cost([]byte(encoded))
	if err != nil {
		return false, fmt.Errorf("%w: bcrypt: %v", ErrInvalidHash, err)
	}
	if cost > maxBcryptCost {
		return false, fmt.Errorf("%w: bcrypt cost %d above %d", ErrInvalidHash, cost, maxBcryptCost)
	}
	err = bcrypt.CompareHashAndPassword([]byte(encoded), []byte(pw))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	default:
		return false, fmt.Errorf("%w: bcrypt: %v", ErrInvalidHash, err)
	}
}

// scryptHash is a decoded Service Center scrypt hash.
type scryptHash struct {
	n, r, p   int
	salt, key []byte
}

// verifyScrypt checks pw against a Service Center scrypt hash.
func verifyScrypt(pw, encoded string) (bool, error) {
	h, err := parseScrypt(encoded)
	if err != nil {
		return false, err
	}
	key, err := scrypt.Key([]byte(pw), h.salt, h.n, h.r, h.p, len(h.key))
	if err != nil {
		return false, fmt.Errorf("%w: scrypt: %v", ErrInvalidHash, err)
	}
	return subtle.ConstantTimeCompare(key, h.key) == 1, nil
}

// parseScrypt decodes the format Service Center stores (that of
// github.com/elithrar/simple-scrypt): N$r$p$<hex salt>$<hex key>, for
// example 1024$8$1$<16 hex digits>$<64 hex digits> with its defaults.
func parseScrypt(encoded string) (scryptHash, error) {
	fields := strings.Split(encoded, "$")
	if len(fields) != 5 {
		return scryptHash{}, fmt.Errorf("%w: unrecognised hash format", ErrInvalidHash)
	}
	var costs [3]uint64
	for i := range costs {
		v, err := parseField(fields[i], "", 32)
		if err != nil {
			return scryptHash{}, fmt.Errorf("%w: scrypt parameters: %v", ErrInvalidHash, err)
		}
		costs[i] = v
	}
	if err := checkScryptCosts(costs[0], costs[1], costs[2]); err != nil {
		return scryptHash{}, fmt.Errorf("%w: scrypt: %v", ErrInvalidHash, err)
	}
	h := scryptHash{n: int(costs[0]), r: int(costs[1]), p: int(costs[2])}
	var err error
	if h.salt, err = hex.DecodeString(fields[3]); err != nil {
		return scryptHash{}, fmt.Errorf("%w: scrypt salt is not hex", ErrInvalidHash)
	}
	if h.key, err = hex.DecodeString(fields[4]); err != nil {
		return scryptHash{}, fmt.Errorf("%w: scrypt key is not hex", ErrInvalidHash)
	}
	if err := checkSaltAndKey(len(h.salt), len(h.key)); err != nil {
		return scryptHash{}, fmt.Errorf("%w: scrypt: %v", ErrInvalidHash, err)
	}
	return h, nil
}

// checkScryptCosts bounds N, r and p of a stored scrypt hash.
func checkScryptCosts(n, r, p uint64) error {
	switch {
	case n < 2 || n > maxScryptN || n&(n-1) != 0:
		return fmt.Errorf("N=%d is not a power of two in 2..%d", n, maxScryptN)
	case r < 1 || p < 1:
		return errors.New("r and p must be at least 1")
	case n*r > maxScryptNR:
		return fmt.Errorf("N·r=%d above %d", n*r, maxScryptNR)
	case n*r*p > maxScryptWork:
		return fmt.Errorf("N·r·p above %d", maxScryptWork)
	}
	return nil
}
