package verifier_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/pkg/verifier"
)

// canonical reports whether tok is three base64url segments, each in the
// one spelling its bytes have (no padding, no unused bits set, no line
// breaks).
func canonical(tok string) bool {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		b, err := base64.RawURLEncoding.Strict().DecodeString(p)
		if err != nil || base64.RawURLEncoding.EncodeToString(b) != p {
			return false
		}
	}
	return true
}

// FuzzVerify feeds token strings to a Verifier of the examples'
// Gatehouse, seeded with its root token. A token that verifies is in
// canonical form and names an account; every refusal wraps one of the
// package's errors and does not echo the token.
func FuzzVerify(f *testing.F) {
	v, err := verifier.New(context.Background(), verifier.Options{JWKSURL: gatehouseURL + "/.well-known/jwks.json"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(exampleToken)
	f.Add(exampleToken + "=")
	f.Add(strings.Replace(exampleToken, ".", ".\n", 1))
	head, _, _ := strings.Cut(exampleToken, ".")
	f.Add(head + ".e30.")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(context.Background(), tok)
		if err != nil {
			known := false
			for _, e := range []error{verifier.ErrExpired, verifier.ErrInvalid, verifier.ErrUnknownKey} {
				known = known || errors.Is(err, e)
			}
			if !known {
				t.Fatalf("Verify failed with %v, none of the package's errors", err)
			}
			if len(tok) >= 8 && strings.Contains(err.Error(), tok) {
				t.Fatalf("the error %q echoes the token", err)
			}
			return
		}
		if c.Account == "" || c.ExpiresAt.IsZero() {
			t.Fatalf("verified claims %+v lack account or expiry", c)
		}
		if !canonical(tok) {
			t.Fatalf("verified a token not in canonical form: %q", tok)
		}
	})
}
