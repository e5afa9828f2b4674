package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/testclock"
)

// FuzzVerify feeds Authorization header values to Verify, seeded with
// live, revoked, deleted-owner and expired tokens. Whatever verifies must
// be a token this engine signed, byte for byte: its claims signed again
// give the same text (RS512 signatures are deterministic), so no other
// spelling of a token is accepted. Every refusal is a 401 or 403 API
// error that does not echo the header.
func FuzzVerify(f *testing.F) {
	clk := testclock.New(time.Unix(1_700_000_000, 0))
	e := newEngine(f, Options{Now: clk.Now})
	e.mkAccount(f, "dave", "Passw0rd!d")
	e.mkAccount(f, "erin", "Passw0rd!e")
	live := e.login(f, "dave", "Passw0rd!d")
	root := e.login(f, RootAccount, rootPW)
	revoked := e.login(f, "dave", "Passw0rd!d")
	p, err := e.Verify("Bearer " + revoked)
	if err != nil {
		f.Fatal(err)
	}
	if err := e.Logout(bg, p, "127.0.0.1"); err != nil {
		f.Fatal(err)
	}
	orphan := e.login(f, "erin", "Passw0rd!e")
	if err := e.DeleteAccount(bg, admin, "erin"); err != nil {
		f.Fatal(err)
	}
	expired, err := e.ring.Sign(&Claims{Account: "dave", Roles: []string{DeveloperRole}, RegisteredClaims: jwt.RegisteredClaims{
		ExpiresAt: jwt.NewNumericDate(clk.Now().Add(-time.Minute)), ID: tokenID(clk.Now().UnixMilli()),
	}})
	if err != nil {
		f.Fatal(err)
	}
	for _, tok := range []string{live, root, revoked, orphan, expired} {
		f.Add("Bearer " + tok)
	}
	f.Add("bearer " + live)
	f.Add(live)
	f.Add("Bearer " + live + " x")
	f.Add("Bearer " + strings.TrimSuffix(live, live[len(live)-1:]))
	f.Fuzz(func(t *testing.T, authorization string) {
		p, err := e.Verify(authorization)
		if err != nil {
			ae, ok := apierror.As(err)
			if !ok {
				t.Fatalf("Verify returned %T %v, not an API error", err, err)
			}
			if s := ae.Status(); s != 401 && s != 403 {
				t.Fatalf("Verify refused with status %d (%s)", s, ae.Code)
			}
			if _, tok, _ := strings.Cut(authorization, " "); len(tok) >= 8 && strings.Contains(ae.Message+ae.Detail, tok) {
				t.Fatalf("the error %q echoes the token", ae.Detail)
			}
			return
		}
		if p.Account == "" || p.Expires.IsZero() {
			t.Fatalf("verified principal %+v lacks account or expiry", p)
		}
		_, tok, _ := strings.Cut(authorization, " ")
		c, err := e.parse(tok)
		if err != nil {
			t.Fatalf("Verify accepted a token parse refuses: %v", err)
		}
		again, err := e.ring.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		if again != tok {
			t.Fatalf("accepted token is not in canonical form:\n got %q\nwant %q", tok, again)
		}
	})
}
