package engine

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/jwtcorpus"
	"github.com/gatehouse/gatehouse/internal/keyring"
	"github.com/gatehouse/gatehouse/internal/store/bolt"
)

// TestTokenFormCorpus runs the RFC 8725 table against parse, with a real
// key ring whose active key the test holds.
func TestTokenFormCorpus(t *testing.T) {
	t.Parallel()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(filepath.Join(t.TempDir(), "gatehouse.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(priv)})
	ring, err := keyring.Open(ctx, st, keyring.Options{PrivateKeyPEM: pemKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ring.Close)
	e := &Engine{signer: ring, cache: newClaimsCache(64), opts: Options{Now: time.Now}}
	now := time.Now().Unix()
	jwtcorpus.Run(t, jwtcorpus.Family{
		Header: map[string]any{"alg": "RS512", "typ": "JWT", "kid": ring.Keys()[0].ID},
		Claims: map[string]any{"account": RootAccount, "roles": []string{AdminRole}, "iat": now, "exp": now + 3600, "jti": tokenID(now * 1000)},
		Sign:   jwtcorpus.RSASign(priv),
	}, func(tok string) bool {
		_, err := e.parse(tok)
		return err == nil
	})
}

// A token re-encoded with other unused bits in its signature is refused,
// also once the token itself is cached: the cache is keyed by the token's
// text, and a variant neither hits it nor passes verification.
func TestTokenVariantsRefused(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	tok := e.login(t, RootAccount, rootPW)
	if _, err := e.Verify("Bearer " + tok); err != nil {
		t.Fatal(err)
	}
	for _, v := range jwtcorpus.Variants(tok) {
		_, err := e.Verify("Bearer " + v)
		wantCode(t, err, "401201")
	}
	if n := e.cache.Len(); n != 1 {
		t.Fatalf("cache holds %d entries, want only the token itself", n)
	}
}
