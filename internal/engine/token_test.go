package engine

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/testclock"
)

func TestTokenID(t *testing.T) {
	t.Parallel()
	for _, ms := range []int64{0, 1, 1700000000123, 1<<48 - 1} {
		id := tokenID(ms)
		u, err := uuid.Parse(id)
		if err != nil || u.Version() != 7 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("tokenID(%d) = %s: version %d, variant %v, %v", ms, id, u.Version(), u.Variant(), err)
		}
		if got := issuedAtMs(&Claims{RegisteredClaims: jwt.RegisteredClaims{ID: id}}); got != ms {
			t.Fatalf("issuedAtMs(tokenID(%d)) = %d", ms, got)
		}
	}
	if a, b := tokenID(5), tokenID(5); a == b {
		t.Fatalf("token ids repeat: %s", a)
	}
	iat := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		id   string
		iat  *jwt.NumericDate
		want int64
	}{
		{uuid.NewString(), jwt.NewNumericDate(iat), 1700000000000},
		{"not-a-uuid", jwt.NewNumericDate(iat), 1700000000000},
		{"", jwt.NewNumericDate(iat), 1700000000000},
		{"", nil, 0},
		{"", nil, 1700000000000 - MaxRequestedTTL.Milliseconds()}, // Service Center's: exp only
	} {
		c := &Claims{RegisteredClaims: jwt.RegisteredClaims{ID: tc.id, IssuedAt: tc.iat}}
		if tc.want != 0 && tc.iat == nil {
			c.ExpiresAt = jwt.NewNumericDate(iat)
		}
		if got := issuedAtMs(c); got != tc.want {
			t.Fatalf("issuedAtMs(jti %q, iat %v) = %d, want %d", tc.id, tc.iat, got, tc.want)
		}
	}
}

// With a clock that does not move, every change still revokes every
// earlier token, and every token issued after it is valid.
func TestRevocationWithFrozenClock(t *testing.T) {
	t.Parallel()
	clk := testclock.New(time.Now())
	e := newEngine(t, Options{Now: clk.Now})
	e.mkAccount(t, "dave", "Passw0rd!d")
	verify := func(tok string) error {
		_, err := e.Verify("Bearer " + tok)
		return err
	}
	inactive, active := StatusInactive, StatusActive
	steps := []struct {
		name    string
		change  func() error
		pwAfter string
	}{
		{"password", func() error {
			return e.ChangePassword(bg, admin, "dave", ChangePasswordRequest{Password: "Passw0rd!d2"})
		}, "Passw0rd!d2"},
		{"own password", func() error {
			dave := authz.Caller{Account: "dave", Roles: []string{DeveloperRole}, IP: "127.0.0.1"}
			return e.ChangePassword(bg, dave, "dave", ChangePasswordRequest{CurrentPassword: "Passw0rd!d2", Password: "Passw0rd!d"})
		}, "Passw0rd!d"},
		{"roles", func() error {
			return e.UpdateAccount(bg, admin, "dave", UpdateAccountRequest{Roles: []string{AdminRole}})
		}, "Passw0rd!d"},
		{"status", func() error {
			return e.UpdateAccount(bg, admin, "dave", UpdateAccountRequest{Roles: []string{AdminRole}, Status: inactive})
		}, "Passw0rd!d"},
		{"status again", func() error {
			return e.UpdateAccount(bg, admin, "dave", UpdateAccountRequest{Roles: []string{AdminRole}, Status: active})
		}, "Passw0rd!d"},
	}
	pw := "Passw0rd!d"
	var tok string
	for _, step := range steps {
		if step.name != "status again" { // dave is inactive before it
			tok = e.login(t, "dave", pw)
			if err := verify(tok); err != nil {
				t.Fatalf("%s: fresh token: %v", step.name, err)
			}
			if iat := parseUnverified(t, tok).IssuedAt.Time; !iat.Equal(clk.Now().Truncate(time.Second)) {
				t.Fatalf("iat %v, want the true time %v", iat, clk.Now())
			}
		}
		if err := step.change(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		wantCode(t, verify(tok), "401201")
		pw = step.pwAfter
	}
	if err := verify(e.login(t, "dave", pw)); err != nil {
		t.Fatalf("token after the last change: %v", err)
	}
}

// Tokens without a time-stamped jti (imported or older ones) are judged by
// iat, to the second, and those without any jti cannot be logged out alone.
func TestLegacyTokens(t *testing.T) {
	t.Parallel()
	clk := testclock.New(time.Now())
	e := newEngine(t, Options{Now: clk.Now})
	e.mkAccount(t, "erin", "Passw0rd!e")
	clk.Advance(2 * time.Second)
	sign := func(c jwt.RegisteredClaims) string {
		c.ExpiresAt = jwt.NewNumericDate(clk.Now().Add(time.Hour))
		tok, err := e.ring.Sign(&Claims{Account: "erin", Roles: []string{DeveloperRole}, RegisteredClaims: c})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	withV4 := sign(jwt.RegisteredClaims{ID: uuid.NewString(), IssuedAt: jwt.NewNumericDate(clk.Now())})
	noJTI := sign(jwt.RegisteredClaims{IssuedAt: jwt.NewNumericDate(clk.Now())})
	bare := sign(jwt.RegisteredClaims{})
	for _, tok := range []string{withV4, noJTI} {
		if _, err := e.Verify("Bearer " + tok); err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.Verify("Bearer " + bare)
	wantCode(t, err, "401201")
	p, err := e.Verify("Bearer " + noJTI)
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, e.Logout(bg, p, "127.0.0.1"), "400001")

	// A change later in the same second revokes them.
	clk.Advance(100 * time.Millisecond)
	if err := e.ChangePassword(bg, admin, "erin", ChangePasswordRequest{Password: "Passw0rd!e2"}); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{withV4, noJTI} {
		_, err := e.Verify("Bearer " + tok)
		wantCode(t, err, "401201")
	}
}

// parseUnverified decodes a token's claims.
func parseUnverified(t *testing.T, tok string) *Claims {
	t.Helper()
	c := new(Claims)
	if _, _, err := jwt.NewParser().ParseUnverified(tok, c); err != nil {
		t.Fatal(err)
	}
	return c
}

// BenchmarkVerify measures Engine.Verify of a valid token: cache-hit is
// the steady state, cache-miss includes the RS512 signature check done
// once per token per replica.
func BenchmarkVerify(b *testing.B) {
	e := newEngine(b, Options{})
	header := "Bearer " + e.login(b, RootAccount, rootPW)
	if _, err := e.Verify(header); err != nil {
		b.Fatal(err)
	}
	b.Run("cache-hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.Verify(header); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cache-miss", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e.cache = newClaimsCache(1) // forget the verified token
			if _, err := e.Verify(header); err != nil {
				b.Fatal(err)
			}
		}
	})
}
