// Package jwtform holds the one form in which Gatehouse accepts a JWT
// (RFC 8725), shared by every parser of its tokens: engine tokens,
// AccessTokens, ccmessaging-tokens and pkg/verifier.
//
// A token is accepted only in the form its issuer wrote it: three
// segments of unpadded base64url (RFC 7515 §2, RFC 4648 §5) using only
// that alphabet, with every unused trailing bit zero, so that a token has
// one encoding and a cache or denylist keyed by its text cannot be passed
// by a re-encoded variant; a header without "crit", since no extension is
// understood (RFC 7515 §4.1.11); and exp, iat and nbf, when present,
// JSON numbers (RFC 7519 §2, NumericDate), never strings or null.
package jwtform

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// segment decodes canonical unpadded base64url only: Strict refuses
// non-zero trailing bits; padding is refused as outside the alphabet.
var segment = base64.RawURLEncoding.Strict()

// Check reports why tok is not in the form Gatehouse accepts, as an error
// wrapping jwt.ErrTokenMalformed, or nil. It does not verify the
// signature.
func Check(tok string) error {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return malformed("the token does not have three segments")
	}
	var decoded [2][]byte
	for i, p := range parts {
		if !inAlphabet(p) {
			return malformed("a segment is not unpadded base64url")
		}
		b, err := segment.DecodeString(p)
		if err != nil {
			return malformed("a segment is not canonical base64url")
		}
		if i < 2 {
			decoded[i] = b
		}
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(decoded[0], &header); err != nil {
		return malformed("the header is not a JSON object")
	}
	if _, ok := header["crit"]; ok {
		return malformed("the header has crit, and no extension is understood")
	}
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(decoded[1], &claims); err != nil {
		return malformed("the claims are not a JSON object")
	}
	for k, v := range claims {
		// encoding/json matches struct fields case-insensitively, so
		// "EXP" would set exp.
		if (strings.EqualFold(k, "exp") || strings.EqualFold(k, "iat") || strings.EqualFold(k, "nbf")) && !isNumber(v) {
			return malformed("exp, iat and nbf must be numbers")
		}
	}
	return nil
}

// ParseWithClaims is jwt.ParseWithClaims for a token that passes Check,
// with the library's strict base64url decoding as well.
func ParseWithClaims(tok string, claims jwt.Claims, keyFunc jwt.Keyfunc, opts ...jwt.ParserOption) (*jwt.Token, error) {
	if err := Check(tok); err != nil {
		return nil, err
	}
	return jwt.ParseWithClaims(tok, claims, keyFunc, append(opts[:len(opts):len(opts)], jwt.WithStrictDecoding())...)
}

func malformed(why string) error {
	return fmt.Errorf("%w: %w", jwt.ErrTokenMalformed, errors.New(why))
}

// inAlphabet reports whether s holds base64url characters only: no
// padding, no line breaks (which Go's decoders skip), no +/.
func inAlphabet(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// isNumber reports whether v, a valid JSON value, is a number.
func isNumber(v json.RawMessage) bool {
	return len(v) > 0 && (v[0] == '-' || '0' <= v[0] && v[0] <= '9')
}

// MaxLifetime is the longest lifetime of the engine tokens Gatehouse and
// Service Center issue.
const MaxLifetime = 24 * time.Hour

// IssuedAtMs returns when an engine token of claims c was issued, in unix
// milliseconds: the instant in its jti when that is a version 7 UUID
// (every token Gatehouse issues), else the first millisecond of its iat
// second, so that a change within that second revokes it. A token with
// neither (Service Center's carry only account, roles and exp) is taken
// as issued as early as its exp allows, exp minus MaxLifetime: every
// change of the account after its real issue then revokes it. Without
// exp either, it is 0. Gatehouse and pkg/verifier judge revocations by
// this one rule.
func IssuedAtMs(c *jwt.RegisteredClaims) int64 {
	if id, err := uuid.Parse(c.ID); err == nil && id.Version() == 7 {
		var ms int64
		for _, b := range id[:6] {
			ms = ms<<8 | int64(b)
		}
		return ms
	}
	switch {
	case c.IssuedAt != nil:
		return c.IssuedAt.UnixMilli()
	case c.ExpiresAt != nil:
		return c.ExpiresAt.Add(-MaxLifetime).UnixMilli()
	}
	return 0
}
