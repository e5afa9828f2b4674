package ccmessaging

import (
	"crypto/sha256"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// claims are the claims of a ccmessaging-token: the session it belongs to
// (channel, user, session id), its generation within the session, iat and
// exp. Every value comes from the session record, so any replica can mint
// the exact token string of a generation again from the record alone.
type claims struct {
	Channel string `json:"ch"`
	User    string `json:"uid"`
	Session string `json:"sid"`
	Gen     int64  `json:"gen"`
	jwt.RegisteredClaims
}

// minter signs and parses ccmessaging-tokens (HS256 under a shared
// server secret). Signing is deterministic: the same claims give the same
// token.
type minter struct{ key []byte }

// mint returns the token of generation gen of rec, issued at iat and
// expiring at exp (unix seconds).
func (m minter) mint(rec *sessionRecord, gen, iat, exp int64) string {
	c := &claims{
		Channel: rec.Channel, User: rec.User, Session: rec.ID, Gen: gen,
		RegisteredClaims: jwt.RegisteredClaims{
			IssuedAt:  jwt.NewNumericDate(time.Unix(iat, 0)),
			ExpiresAt: jwt.NewNumericDate(time.Unix(exp, 0)),
		},
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(m.key)
	if err != nil {
		panic("ccmessaging: HS256 signing with a byte key cannot fail: " + err.Error())
	}
	return tok
}

// parse returns the claims of a token signed with m's key, whether or not
// it has expired: an expired token of a live session is renewed.
func (m minter) parse(tok string) (*claims, bool) {
	c := new(claims)
	_, err := jwt.ParseWithClaims(tok, c, func(*jwt.Token) (any, error) { return m.key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithoutClaimsValidation())
	if err != nil || c.Session == "" || c.IssuedAt == nil || c.ExpiresAt == nil {
		return nil, false
	}
	return c, true
}

// tokenHash is the key of a token in the session table.
func tokenHash(tok string) [sha256.Size]byte { return sha256.Sum256([]byte(tok)) }
