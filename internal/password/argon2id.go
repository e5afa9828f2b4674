package password

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// argon2idPrefix starts every argon2id PHC string.
const argon2idPrefix = "$argon2id$"

// phcBase64 is the PHC string encoding of salts and keys: standard alphabet,
// no padding, no stray bits.
var phcBase64 = base64.RawStdEncoding.Strict()

// deriveArgon2id derives the argon2id key of pw with salt and p.
func deriveArgon2id(pw string, salt []byte, p Params) []byte {
	return argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
}

// encodeArgon2id formats an argon2id PHC string.
func encodeArgon2id(p Params, salt, key []byte) string {
	return fmt.Sprintf("%sv=%d$m=%d,t=%d,p=%d$%s$%s", argon2idPrefix, argon2.Version,
		p.Memory, p.Time, p.Threads, phcBase64.EncodeToString(salt), phcBase64.EncodeToString(key))
}

// verifyArgon2id checks pw against an argon2id PHC string and returns the
// parameters the string was made with.
func verifyArgon2id(pw, encoded string) (bool, Params, error) {
	p, salt, key, err := parseArgon2id(encoded)
	if err != nil {
		return false, Params{}, err
	}
	ok := subtle.ConstantTimeCompare(deriveArgon2id(pw, salt, p), key) == 1
	return ok, p, nil
}

// parseArgon2id decodes $argon2id$v=19$m=<KiB>,t=<passes>,p=<threads>$<salt>$<key>
// and bounds its parameters.
func parseArgon2id(encoded string) (Params, []byte, []byte, error) {
	fields := strings.Split(encoded, "$")
	if len(fields) != 6 || fields[0] != "" || fields[1] != "argon2id" {
		return Params{}, nil, nil, fmt.Errorf("%w: not an argon2id PHC string", ErrInvalidHash)
	}
	if fields[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return Params{}, nil, nil, fmt.Errorf("%w: unsupported argon2 version", ErrInvalidHash)
	}
	p, err := parseArgon2Costs(fields[3])
	if err != nil {
		return Params{}, nil, nil, fmt.Errorf("%w: argon2id parameters: %v", ErrInvalidHash, err)
	}
	salt, err := phcBase64.DecodeString(fields[4])
	if err != nil {
		return Params{}, nil, nil, fmt.Errorf("%w: argon2id salt is not base64", ErrInvalidHash)
	}
	key, err := phcBase64.DecodeString(fields[5])
	if err != nil {
		return Params{}, nil, nil, fmt.Errorf("%w: argon2id key is not base64", ErrInvalidHash)
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	if err := checkArgon2Limits(p); err != nil {
		return Params{}, nil, nil, fmt.Errorf("%w: argon2id: %v", ErrInvalidHash, err)
	}
	return p, salt, key, nil
}

// parseArgon2Costs parses "m=<KiB>,t=<passes>,p=<threads>", in that order.
func parseArgon2Costs(s string) (Params, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return Params{}, errors.New("want m=,t=,p=")
	}
	m, err := parseField(parts[0], "m=", 32)
	if err != nil {
		return Params{}, err
	}
	t, err := parseField(parts[1], "t=", 32)
	if err != nil {
		return Params{}, err
	}
	threads, err := parseField(parts[2], "p=", 8)
	if err != nil {
		return Params{}, err
	}
	return Params{Memory: uint32(m), Time: uint32(t), Threads: uint8(threads)}, nil
}

// parseField parses a decimal number of at most bits bits that follows
// prefix in s.
func parseField(s, prefix string, bits int) (uint64, error) {
	digits, found := strings.CutPrefix(s, prefix)
	if !found {
		return 0, fmt.Errorf("want %snumber", prefix)
	}
	n, err := strconv.ParseUint(digits, 10, bits)
	if err != nil {
		return 0, fmt.Errorf("bad number after %q", prefix)
	}
	return n, nil
}
