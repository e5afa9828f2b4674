package verifier_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/jwtcorpus"
	"github.com/gatehouse/gatehouse/pkg/verifier"
)

// TestTokenFormCorpus runs the RFC 8725 table against Verify, with a key
// set the test signs for.
func TestTokenFormCorpus(t *testing.T) {
	t.Parallel()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &priv.PublicKey, KeyID: "k1", Algorithm: "RS512", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(set) }))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	v, err := verifier.New(ctx, verifier.Options{JWKSURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	jwtcorpus.Run(t, jwtcorpus.Family{
		Header: map[string]any{"alg": "RS512", "typ": "JWT", "kid": "k1"},
		Claims: map[string]any{"account": "root", "roles": []string{"admin"}, "iat": now, "exp": now + 3600, "jti": "j"},
		Sign:   jwtcorpus.RSASign(priv),
	}, func(tok string) bool {
		_, err := v.Verify(ctx, tok)
		return err == nil
	})
}

// A Gatehouse token re-encoded with other unused bits in its signature is
// refused.
func TestTokenVariantsRefused(t *testing.T) {
	t.Parallel()
	base := gatehouse(t)
	tok := login(t, base)
	ctx := context.Background()
	v, err := verifier.New(ctx, verifier.Options{JWKSURL: base + "/.well-known/jwks.json"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	for _, variant := range jwtcorpus.Variants(tok) {
		if _, err := v.Verify(ctx, variant); !errors.Is(err, verifier.ErrInvalid) {
			t.Fatalf("variant: %v, want %v", err, verifier.ErrInvalid)
		}
	}
}
