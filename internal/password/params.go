package password

import (
	"errors"
	"fmt"
)

// ErrInvalidParams is returned by Params.Validate and NewHasher for argon2id
// parameters outside the accepted range.
var ErrInvalidParams = errors.New("password: invalid argon2id parameters")

// Params are the argon2id cost parameters used to hash new passwords.
type Params struct {
	Memory  uint32 // memory in KiB
	Time    uint32 // number of passes over the memory
	Threads uint8  // degree of parallelism
	SaltLen uint32 // salt length in bytes
	KeyLen  uint32 // derived key length in bytes
}

// DefaultParams returns OWASP's recommended minimum for argon2id:
// m=19456 KiB (19 MiB), t=2, p=1, a 16-byte salt and a 32-byte key.
func DefaultParams() Params {
	return Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// owaspMinimums is OWASP's Password Storage Cheat Sheet table of equivalent
// minimum argon2id configurations (memory in KiB, passes), all with p=1.
var owaspMinimums = []struct{ memory, time uint32 }{
	{47104, 1},
	{19456, 2},
	{12288, 3},
	{9216, 4},
	{7168, 5},
}

// Bounds on the salt and key of new hashes (RFC 9106 recommends a 128-bit
// salt and a 256-bit tag).
const (
	minNewSaltLen = 16
	minNewKeyLen  = 32
)

// Ceilings applied to new and stored argon2id hashes alike, so that a
// tampered record cannot make one verification exhaust the machine, and so
// that every hash a Hasher produces is one it accepts.
const (
	maxArgon2Memory = 1 << 20 // KiB, that is 1 GiB
	maxArgon2Time   = 16
)

// Bounds on salt and key lengths of any stored hash, argon2id or scrypt.
const (
	minStoredSaltLen = 8
	maxStoredSaltLen = 64
	minStoredKeyLen  = 16
	maxStoredKeyLen  = 128
)

// Validate reports whether p is acceptable for hashing new passwords.
//
// Memory and Time must reach at least one row of OWASP's argon2id table
// (m=47104,t=1; m=19456,t=2; m=12288,t=3; m=9216,t=4; m=7168,t=5; memory in
// KiB): both values at or above the row's. Threads must be at least 1,
// SaltLen at least 16 and KeyLen at least 32. Raising any parameter is
// allowed up to the ceilings that also apply to stored hashes: memory 1 GiB,
// 16 passes, a 64-byte salt and a 128-byte key.
func (p Params) Validate() error {
	if err := checkArgon2Limits(p); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidParams, err)
	}
	if !meetsOWASP(p.Memory, p.Time) {
		return fmt.Errorf("%w: m=%d KiB with t=%d is below OWASP's minimum (m=47104,t=1 / m=19456,t=2 / m=12288,t=3 / m=9216,t=4 / m=7168,t=5)",
			ErrInvalidParams, p.Memory, p.Time)
	}
	if p.SaltLen < minNewSaltLen {
		return fmt.Errorf("%w: salt length %d is below %d bytes", ErrInvalidParams, p.SaltLen, minNewSaltLen)
	}
	if p.KeyLen < minNewKeyLen {
		return fmt.Errorf("%w: key length %d is below %d bytes", ErrInvalidParams, p.KeyLen, minNewKeyLen)
	}
	return nil
}

// meetsOWASP reports whether memory and time dominate a row of OWASP's table.
func meetsOWASP(memory, time uint32) bool {
	for _, row := range owaspMinimums {
		if memory >= row.memory && time >= row.time {
			return true
		}
	}
	return false
}

// checkArgon2Limits enforces what argon2id itself requires and the DoS
// ceilings; it is the whole check for stored hashes.
func checkArgon2Limits(p Params) error {
	switch {
	case p.Threads < 1:
		return errors.New("parallelism must be at least 1")
	case p.Time < 1 || p.Time > maxArgon2Time:
		return fmt.Errorf("passes %d outside 1..%d", p.Time, maxArgon2Time)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxArgon2Memory:
		return fmt.Errorf("memory %d KiB outside %d..%d", p.Memory, 8*uint32(p.Threads), maxArgon2Memory)
	}
	return checkSaltAndKey(int(p.SaltLen), int(p.KeyLen))
}

// checkSaltAndKey bounds the salt and key lengths of a hash.
func checkSaltAndKey(saltLen, keyLen int) error {
	if saltLen < minStoredSaltLen || saltLen > maxStoredSaltLen {
		return fmt.Errorf("salt length %d outside %d..%d", saltLen, minStoredSaltLen, maxStoredSaltLen)
	}
	if keyLen < minStoredKeyLen || keyLen > maxStoredKeyLen {
		return fmt.Errorf("key length %d outside %d..%d", keyLen, minStoredKeyLen, maxStoredKeyLen)
	}
	return nil
}
