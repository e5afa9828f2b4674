package verifier

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkRevocationCheck is what the revocation feed adds to a
// verification: the lookups of the token id and the account, here among
// 100 000 revoked ids and 10 000 accounts.
func BenchmarkRevocationCheck(b *testing.B) {
	rv := &revocations{tokens: map[string]int64{}, accounts: map[string]accountRevocation{}}
	exp := time.Now().Add(time.Hour).Unix()
	for i := range 100000 {
		rv.tokens[fmt.Sprintf("jti-%d", i)] = exp
	}
	for i := range 10000 {
		name := fmt.Sprintf("account-%d", i)
		rv.accounts[name] = accountRevocation{Account: name, ID: "id-" + name, RevokedBefore: 1000}
	}
	c := &claims{Account: "account-42", RegisteredClaims: jwt.RegisteredClaims{ID: "not-revoked"}}
	c.Cred = &struct {
		ID      string `json:"id"`
		Version int64  `json:"ver"`
	}{"id-account-42", 1000}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := rv.check(c); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// testKeys returns n distinct public keys named a, b, c…, generated
// once: the tests compare keys by pointer.
var testKeys = func() func(n int) []publicKey {
	var keys []publicKey
	return func(n int) []publicKey {
		for len(keys) < n {
			priv, err := rsa.GenerateKey(rand.Reader, 1024)
			if err != nil {
				panic(err)
			}
			keys = append(keys, publicKey{id: string(rune('a' + len(keys))), pub: &priv.PublicKey})
		}
		return keys[:n]
	}
}()

// TestKeysListing: a keys event drops at once the keys it does not list,
// including from a key set fetched before it and installed after it,
// reports a listed key missing from the fetched set, and lets a key it
// lists again verify without a fetch.
func TestKeysListing(t *testing.T) {
	k := testKeys(3)
	a, b, c := k[0], k[1], k[2]
	v := &Verifier{}
	t0 := time.Unix(1700000000, 0)
	v.install(newKeySet([]publicKey{a, b}), t0)
	if first := v.current().first; first != a.pub {
		t.Fatal("before any keys event, the first fetched key is the active one")
	}

	missing, seen := v.list(map[string]bool{"b": true, "c": true})
	if !missing || !seen.Equal(t0) {
		t.Fatalf("list(b, c) over a fetched (a, b): missing %v, fetched at %v", missing, seen)
	}
	ks := v.current()
	if ks.byID["a"] != nil || ks.byID["b"] != b.pub || ks.first != b.pub {
		t.Fatalf("after list(b, c): keys %v, want b alone and first", ks.byID)
	}
	// A fetch that started before the event, from a replica that still
	// published a.
	v.install(newKeySet([]publicKey{c, a, b}), t0.Add(time.Second))
	ks = v.current()
	if ks.byID["a"] != nil || ks.byID["b"] != b.pub || ks.byID["c"] != c.pub || ks.first != c.pub {
		t.Fatalf("after installing (c, a, b): keys %v, want c and b, c first", ks.byID)
	}
	if missing, _ := v.list(map[string]bool{"a": true, "c": true}); missing {
		t.Fatal("list(a, c) with a and c fetched reports a missing key")
	}
	if ks = v.current(); ks.byID["a"] != a.pub || ks.byID["b"] != nil || ks.first != c.pub {
		t.Fatalf("after list(a, c): keys %v, want c and a", ks.byID)
	}
}
