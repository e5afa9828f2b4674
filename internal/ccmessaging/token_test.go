package ccmessaging

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func testRecord() *sessionRecord {
	return &sessionRecord{ID: "sid-1", Channel: "1001", User: "alice", Gen: 3, Issued: 1_700_000_000, Exp: 1_700_003_600}
}

func TestMintIsDeterministic(t *testing.T) {
	m := minter{key: []byte("0123456789abcdef0123456789abcdef")}
	rec := testRecord()
	a := m.mint(rec, rec.Gen, rec.Issued, rec.Exp)
	if b := m.mint(rec, rec.Gen, rec.Issued, rec.Exp); a != b {
		t.Fatalf("same record minted two tokens:\n%s\n%s", a, b)
	}
	other := map[string]string{
		"generation": m.mint(rec, rec.Gen-1, rec.Issued, rec.Exp),
		"exp":        m.mint(rec, rec.Gen, rec.Issued, rec.Exp+1),
		"key":        minter{key: []byte("another key of thirty-two bytes!")}.mint(rec, rec.Gen, rec.Issued, rec.Exp),
	}
	for what, tok := range other {
		if tok == a {
			t.Errorf("a different %s minted the same token", what)
		}
	}
}

// TestMintIsStable pins tokens minted from fixed records and key: a
// change of the claims' encoding would make every replica mint other
// strings for the same sessions, and refuse the tokens already issued.
func TestMintIsStable(t *testing.T) {
	m := minter{key: []byte("0123456789abcdef0123456789abcdef")}
	rec := fullRecord()
	escaped := sessionRecord{ID: "s\"<é>\u2028/x", Channel: "1001", User: "bob&\"/\\<>", Gen: 1, Issued: 0, Exp: 1}
	for _, tc := range []struct {
		name          string
		rec           *sessionRecord
		gen, iat, exp int64
		want          string
	}{
		{"current", &rec, rec.Gen, rec.Issued, rec.Exp, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." +
			"eyJjaCI6IjEwMDEiLCJ1aWQiOiJhbGljZSIsInNpZCI6IjZmMWMyYTllLTBkNGItNGE1Ny05YTQzLTJmN2YxZjBiMWMzZCIsImdlbiI6NywiZXhwIjoxNzAwMDAzNjAwLCJpYXQiOjE3MDAwMDAwMDB9." +
			"FjF-iNC2XkA4-eiWe5bXDFXb5l7AvZuwEmRYyi9ZfVo"},
		{"previous", &rec, rec.Gen - 1, rec.PrevIssued, rec.PrevExp, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." +
			"eyJjaCI6IjEwMDEiLCJ1aWQiOiJhbGljZSIsInNpZCI6IjZmMWMyYTllLTBkNGItNGE1Ny05YTQzLTJmN2YxZjBiMWMzZCIsImdlbiI6NiwiZXhwIjoxNzAwMDAwMDAwLCJpYXQiOjE2OTk5OTY0MDB9." +
			"9W7PG3ywVRKsdx-9YnJBecpdyHe9i_JJ3KbwgAESdjw"},
		{"escaped strings, zero iat", &escaped, 1, 0, 1, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." +
			"eyJjaCI6IjEwMDEiLCJ1aWQiOiJib2JcdTAwMjZcIi9cXFx1MDAzY1x1MDAzZSIsInNpZCI6InNcIlx1MDAzY8OpXHUwMDNlXHUyMDI4L3giLCJnZW4iOjEsImV4cCI6MSwiaWF0IjowfQ." +
			"sVxtiWz5uhbA71LwC_tZudHQHj-V6gh5NB_DPt8eqbY"},
	} {
		if got := m.mint(tc.rec, tc.gen, tc.iat, tc.exp); got != tc.want {
			t.Errorf("%s: minted\n%s\nwant\n%s", tc.name, got, tc.want)
		}
	}
}

func TestMintParseRoundTrip(t *testing.T) {
	m := minter{key: []byte("0123456789abcdef0123456789abcdef")}
	rec := testRecord() // long expired: parse must still return it
	tok := m.mint(rec, rec.Gen, rec.Issued, rec.Exp)
	c, ok := m.parse(tok)
	if !ok {
		t.Fatal("parse refused a minted token")
	}
	if c.Channel != rec.Channel || c.User != rec.User || c.Session != rec.ID || c.Gen != rec.Gen ||
		c.IssuedAt.Unix() != rec.Issued || c.ExpiresAt.Unix() != rec.Exp {
		t.Fatalf("claims %+v do not match record %+v", c, rec)
	}
	header, _, _ := strings.Cut(tok, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(header)
	if string(raw) != `{"alg":"HS256","typ":"JWT"}` {
		t.Fatalf("header %s", raw)
	}
}

func TestParseRejectsForgeries(t *testing.T) {
	m := minter{key: []byte("0123456789abcdef0123456789abcdef")}
	rec := testRecord()
	good := m.mint(rec, rec.Gen, rec.Issued, rec.Exp)
	parts := strings.Split(good, ".")
	forged := *rec
	forged.User = "mallory"
	forgedPayload := strings.Split(m.mint(&forged, rec.Gen, rec.Issued, rec.Exp), ".")[1]
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, &claims{Session: "sid-1", Channel: "1001", User: "alice",
		RegisteredClaims: jwt.RegisteredClaims{IssuedAt: jwt.NewNumericDate(time.Now()), ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}).
		SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		"other key":       minter{key: []byte("another key of thirty-two bytes!")}.mint(rec, rec.Gen, rec.Issued, rec.Exp),
		"swapped payload": parts[0] + "." + forgedPayload + "." + parts[2],
		"alg none":        none,
		"no signature":    parts[0] + "." + parts[1] + ".",
		"not a jwt":       "abc",
		"empty":           "",
		"truncated":       good[:len(good)-2],
		"without sid":     m.mint(&sessionRecord{Channel: "1", User: "u", Gen: 1, Issued: 1, Exp: 2}, 1, 1, 2),
	} {
		if _, ok := m.parse(tok); ok {
			t.Errorf("%s: parse accepted a forged token", name)
		}
	}
}

func TestTokenHash(t *testing.T) {
	for _, n := range []int{0, 1, tokenBuf, tokenBuf + 1, 4 * tokenBuf} {
		tok := strings.Repeat("x", n)
		if tokenHash(tok) != sha256.Sum256([]byte(tok)) {
			t.Errorf("hash of a %d-byte token is not its SHA-256", n)
		}
	}
}

func TestTokenTimes(t *testing.T) {
	s := &Service{opts: Options{TokenTTL: time.Hour}}
	for _, now := range []time.Time{time.Unix(1000, 0), time.Unix(1000, 1), time.Unix(1000, 999_999_999)} {
		iat, exp := s.tokenTimes(now)
		if iat != 1000 {
			t.Errorf("iat %d at %v", iat, now)
		}
		if end := time.Unix(exp, 0); end.Before(now.Add(time.Hour)) || end.Sub(now.Add(time.Hour)) >= time.Second {
			t.Errorf("exp %d at %v: want the first second at or after now+TTL", exp, now)
		}
	}
}

func TestClassify(t *testing.T) {
	now := time.Unix(2000, 0)
	rec := &sessionRecord{ID: "s", Gen: 5, Exp: 2001, PrevUntil: now.Add(time.Second).UnixMilli()}
	expired := &sessionRecord{ID: "s", Gen: 5, Exp: 2000, PrevUntil: now.UnixMilli()}
	for _, tc := range []struct {
		name string
		rec  *sessionRecord
		sid  string
		gen  int64
		want verdict
	}{
		{"current", rec, "s", 5, tokenValid},
		{"previous in grace", rec, "s", 4, tokenSuperseded},
		{"older", rec, "s", 3, tokenDead},
		{"newer", rec, "s", 6, tokenDead},
		{"other session", rec, "t", 5, tokenDead},
		{"current expired", expired, "s", 5, tokenExpired},
		{"previous after grace", expired, "s", 4, tokenDead},
	} {
		if got := classify(tc.rec, tc.sid, tc.gen, now); got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, got, tc.want)
		}
	}
}
