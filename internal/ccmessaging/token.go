package ccmessaging

import (
	"crypto/sha256"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse/gatehouse/pkg/jwtform"
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

// mintedClaims are claims as mint encodes them: the same JSON, with exp
// and iat as plain integers (jwt.NumericDate encodes whole seconds the
// same way), so that encoding them takes no dates to allocate nor
// marshalers to call. The embedded RegisteredClaims, empty and not
// encoded, make it a jwt.Claims.
type mintedClaims struct {
	Channel              string `json:"ch"`
	User                 string `json:"uid"`
	Session              string `json:"sid"`
	Gen                  int64  `json:"gen"`
	Exp                  int64  `json:"exp"`
	Iat                  int64  `json:"iat"`
	jwt.RegisteredClaims `json:"-"`
}

// mint returns the token of generation gen of rec, issued at iat and
// expiring at exp (unix seconds).
func (m minter) mint(rec *sessionRecord, gen, iat, exp int64) string {
	c := &mintedClaims{Channel: rec.Channel, User: rec.User, Session: rec.ID, Gen: gen, Exp: exp, Iat: iat}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(m.key)
	if err != nil {
		panic("ccmessaging: HS256 signing with a byte key cannot fail: " + err.Error())
	}
	return tok
}

// parse returns the claims of a token in Gatehouse's one form (jwtform)
// signed with m's key, whether or not it has expired: an expired token of
// a live session is renewed.
func (m minter) parse(tok string) (*claims, bool) {
	c := new(claims)
	_, err := jwtform.ParseWithClaims(tok, c, func(*jwt.Token) (any, error) { return m.key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithoutClaimsValidation())
	if err != nil || c.Session == "" || c.IssuedAt == nil || c.ExpiresAt == nil {
		return nil, false
	}
	return c, true
}

// tokenBuf is the size of the buffer tokenHash copies a token to: enough
// for any token minted here (under 600 bytes with the longest channel and
// user IDs), so that hashing one allocates nothing.
const tokenBuf = 640

// tokenHash is the key of a token in the session table.
func tokenHash(tok string) [sha256.Size]byte {
	var buf [tokenBuf]byte
	return sha256.Sum256(append(buf[:0], tok...))
}
