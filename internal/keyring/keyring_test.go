package keyring

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/bolt"
	"github.com/gatehouse/gatehouse/internal/testclock"
)

// fixtureKeys are generated once and imported by tests that are not about
// key generation.
var fixtureKeys = sync.OnceValue(func() []*rsa.PrivateKey {
	keys := make([]*rsa.PrivateKey, 2)
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keys[i] = k
	}
	return keys
})

func pkcs1PEM(k *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

func pkcs8PEM(t *testing.T, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func openStore(t *testing.T, path string) *bolt.Store {
	t.Helper()
	st, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newStore(t *testing.T) *bolt.Store {
	return openStore(t, filepath.Join(t.TempDir(), "gatehouse.db"))
}

func openRing(t *testing.T, st store.Store, opts Options) *Ring {
	t.Helper()
	r, err := Open(t.Context(), st, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// importRing opens a ring on st whose first key is fixture key i.
func importRing(t *testing.T, st store.Store, i int) *Ring {
	return openRing(t, st, Options{PrivateKeyPEM: pkcs1PEM(fixtureKeys()[i])})
}

func activeID(t *testing.T, r *Ring) string {
	t.Helper()
	for _, k := range r.Keys() {
		if k.Status == StatusActive {
			return k.ID
		}
	}
	t.Fatal("no active key")
	return ""
}

func thumbprint(t *testing.T, k *rsa.PrivateKey) string {
	t.Helper()
	id, err := keyID(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func storedRing(t *testing.T, st store.Store) ringRecord {
	t.Helper()
	it, err := st.Get(t.Context(), ringKey)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := decodeRing(&it)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func claims() jwt.MapClaims {
	return jwt.MapClaims{"account": "root", "roles": []string{"admin"}, "exp": time.Now().Add(time.Hour).Unix()}
}

func parse(r *Ring, token string) (*jwt.Token, error) {
	return jwt.Parse(token, r.Keyfunc, jwt.WithValidMethods([]string{"RS512"}))
}

func mustSign(t *testing.T, r *Ring) string {
	t.Helper()
	token, err := r.Sign(claims())
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// eventually polls cond for up to 10 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestGeneratePersistReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	st, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(t.Context(), st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	keys := r.Keys()
	if len(keys) != 1 || keys[0].Status != StatusActive || keys[0].Bits != DefaultBits || keys[0].Algorithm != "RS512" {
		t.Fatalf("keys after first start: %+v", keys)
	}
	if !r.Ready() {
		t.Fatal("ring not ready after Open")
	}
	token := mustSign(t, r)
	r.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	again := openRing(t, openStore(t, path), Options{})
	if got := again.Keys(); len(got) != 1 || got[0].ID != keys[0].ID || !got[0].Created.Equal(keys[0].Created) {
		t.Fatalf("keys after reopen: %+v, want %+v", got, keys)
	}
	if _, err := parse(again, token); err != nil {
		t.Fatalf("token from before the restart: %v", err)
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		wantBits int // 0: Open must fail
	}{
		{"3072 bits", Options{Bits: 3072}, 3072},
		{"1024 bits", Options{Bits: 1024}, 0},
		{"2047 bits", Options{Bits: 2047}, 0},
		{"negative lifetime", Options{MaxTokenLifetime: -time.Hour}, 0},
		{"pre-publication under a second", Options{Prepublish: time.Millisecond}, 0},
		{"rotation faster than hourly", Options{RotateEvery: time.Minute}, 0},
		{"rotation period within the pre-publication", Options{RotateEvery: time.Hour, Prepublish: time.Hour}, 0},
		{"hourly rotation", Options{RotateEvery: time.Hour}, 2048},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Open(t.Context(), newStore(t), tt.opts)
			if tt.wantBits == 0 {
				if err == nil {
					r.Close()
					t.Fatal("Open succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got := r.Keys()[0].Bits; got != tt.wantBits {
				t.Fatalf("bits = %d, want %d", got, tt.wantBits)
			}
		})
	}
}

func TestImport(t *testing.T) {
	rsaKey := fixtureKeys()[0]
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		pem     []byte
		wantKID string // empty: Open must fail
	}{
		{"PKCS#1", pkcs1PEM(rsaKey), thumbprint(t, rsaKey)},
		{"PKCS#8", pkcs8PEM(t, rsaKey), thumbprint(t, rsaKey)},
		{"garbage", []byte("not a key"), ""},
		{"garbage in PEM", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("junk")}), ""},
		{"PKCS#8 EC", pkcs8PEM(t, ecKey), ""},
		{"SEC 1 EC", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}), ""},
		{"1024-bit RSA", pkcs1PEM(small), ""},
		{"public key", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newStore(t)
			r, err := Open(t.Context(), st, Options{PrivateKeyPEM: tt.pem})
			if tt.wantKID == "" {
				if err == nil {
					r.Close()
					t.Fatal("Open succeeded")
				}
				if _, err := st.Get(t.Context(), ringKey); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("a rejected import left a ring in the store: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got := activeID(t, r); got != tt.wantKID {
				t.Fatalf("active kid = %s, want %s", got, tt.wantKID)
			}
		})
	}
}

func TestKeyIDIsRFC7638Thumbprint(t *testing.T) {
	r := importRing(t, newStore(t), 0)
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(r.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("JWKS = %s", r.JWKS())
	}
	jwk := set.Keys[0]
	if jwk["kty"] != "RSA" || jwk["alg"] != "RS512" || jwk["use"] != "sig" {
		t.Fatalf("JWK = %v", jwk)
	}
	// RFC 7638 §3.2: the required members in lexicographic order, no spaces.
	sum := sha256.Sum256([]byte(`{"e":"` + jwk["e"] + `","kty":"RSA","n":"` + jwk["n"] + `"}`))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	if jwk["kid"] != want || activeID(t, r) != want {
		t.Fatalf("kid = %s (JWKS) / %s (Keys), want %s", jwk["kid"], activeID(t, r), want)
	}
	n, err := base64.RawURLEncoding.DecodeString(jwk["n"])
	if err != nil || string(n) != string(fixtureKeys()[0].N.Bytes()) {
		t.Fatalf("JWK n does not match the key (%v)", err)
	}
}

func TestSignVerify(t *testing.T) {
	r := importRing(t, newStore(t), 0)
	token := mustSign(t, r)
	head, _, _ := strings.Cut(token, ".")
	header, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"alg":"RS512","kid":"` + activeID(t, r) + `","typ":"JWT"}`
	if string(header) != want {
		t.Fatalf("header = %s, want %s", header, want)
	}
	parsed, err := parse(r, token)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := parsed.Claims.(jwt.MapClaims)["account"]; got != "root" {
		t.Fatalf("account claim = %v", got)
	}
}

func TestForgeriesFail(t *testing.T) {
	r := importRing(t, newStore(t), 0)
	kid := activeID(t, r)
	pub := fixtureKeys()[0].Public()
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	tests := []struct {
		name  string
		token string
		want  error // expected from Keyfunc alone; nil: only the signature check fails
	}{
		{"alg none", signWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, map[string]any{"kid": kid}), ErrAlgorithm},
		{"alg none without kid", signWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil), ErrAlgorithm},
		{"HS512 keyed with the public key PEM", signWith(t, jwt.SigningMethodHS512, pubPEM, map[string]any{"kid": kid}), ErrAlgorithm},
		{"HS512 keyed with the public key DER", signWith(t, jwt.SigningMethodHS512, pubDER, nil), ErrAlgorithm},
		{"RS256 with the right key", signWith(t, jwt.SigningMethodRS256, fixtureKeys()[0], map[string]any{"kid": kid}), ErrAlgorithm},
		{"unknown kid", signWith(t, jwt.SigningMethodRS512, fixtureKeys()[1], map[string]any{"kid": thumbprint(t, fixtureKeys()[1])}), ErrUnknownKey},
		{"kid not a string", signWith(t, jwt.SigningMethodRS512, fixtureKeys()[0], map[string]any{"kid": 7}), ErrBadKeyID},
		{"right kid, other key", signWith(t, jwt.SigningMethodRS512, fixtureKeys()[1], map[string]any{"kid": kid}), nil},
		{"no kid, other key", signWith(t, jwt.SigningMethodRS512, fixtureKeys()[1], nil), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parse(r, tt.token); err == nil {
				t.Fatal("accepted with WithValidMethods")
			}
			_, err := jwt.Parse(tt.token, r.Keyfunc)
			if err == nil {
				t.Fatal("accepted by Keyfunc alone")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	st := newStore(t)
	const lifetime = 2 * time.Hour
	r := openRing(t, st, Options{PrivateKeyPEM: pkcs8PEM(t, fixtureKeys()[0]), MaxTokenLifetime: lifetime})
	oldID := activeID(t, r)
	oldToken := mustSign(t, r)
	noKID := signWith(t, jwt.SigningMethodRS512, fixtureKeys()[0], nil)
	if _, err := parse(r, noKID); err != nil {
		t.Fatalf("token without kid signed by the active key: %v", err)
	}

	info, err := r.Rotate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.ID == oldID || info.Status != StatusActive || info.Bits != DefaultBits {
		t.Fatalf("Rotate returned %+v", info)
	}
	if got := activeID(t, r); got != info.ID {
		t.Fatalf("active kid after Rotate = %s, want %s", got, info.ID)
	}
	newToken := mustSign(t, r)
	for name, token := range map[string]string{"old": oldToken, "new": newToken} {
		if _, err := parse(r, token); err != nil {
			t.Fatalf("%s token: %v", name, err)
		}
	}
	if got := parsedKID(t, r, newToken); got != info.ID {
		t.Fatalf("new token kid = %s, want %s", got, info.ID)
	}
	if _, err := parse(r, noKID); err != nil {
		t.Fatalf("a token without kid no longer verifies with the retired imported key: %v", err)
	}

	keys := r.Keys()
	if len(keys) != 2 || keys[0].ID != info.ID || keys[1].ID != oldID || keys[1].Status != StatusRetired ||
		!keys[1].Expires.Equal(keys[1].Retired.Add(lifetime)) || keys[1].Retired.IsZero() {
		t.Fatalf("keys after rotation: %+v", keys)
	}
	if got := jwksIDs(t, r); len(got) != 2 || got[0] != info.ID || got[1] != oldID {
		t.Fatalf("JWKS kids = %v, want [%s %s]", got, info.ID, oldID)
	}
}

// signWith signs claims() with method and key, adding header fields.
func signWith(t *testing.T, method jwt.SigningMethod, key any, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims())
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func parsedKID(t *testing.T, r *Ring, token string) string {
	t.Helper()
	parsed, err := parse(r, token)
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := parsed.Header["kid"].(string)
	return kid
}

func jwksIDs(t *testing.T, r *Ring) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(r.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(set.Keys))
	for i, k := range set.Keys {
		ids[i] = k.KID
	}
	return ids
}

func TestRetiredKeyExpires(t *testing.T) {
	st := newStore(t)
	r := openRing(t, st, Options{PrivateKeyPEM: pkcs1PEM(fixtureKeys()[0]), MaxTokenLifetime: 500 * time.Millisecond})
	oldToken := mustSign(t, r)
	info, err := r.Rotate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parse(r, oldToken); err != nil {
		t.Fatalf("old token right after rotation: %v", err)
	}
	eventually(t, "the retired key to leave the JWKS", func() bool { return len(jwksIDs(t, r)) == 1 })
	if _, err := parse(r, oldToken); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old token after expiry: %v, want ErrUnknownKey", err)
	}
	if keys := r.Keys(); len(keys) != 1 || keys[0].ID != info.ID {
		t.Fatalf("keys after expiry: %+v", keys)
	}
	eventually(t, "the retired key to be deleted from the store", func() bool {
		return len(storedRing(t, st).Keys) == 1
	})
}

func TestReplicasFollowEachOther(t *testing.T) {
	st := newStore(t)
	a := importRing(t, st, 0)
	b := openRing(t, st, Options{})
	if activeID(t, a) != activeID(t, b) {
		t.Fatal("replicas disagree on the active key")
	}
	info, err := a.Rotate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "replica b to see the rotation", func() bool { return activeID(t, b) == info.ID })
	if _, err := parse(b, mustSign(t, a)); err != nil {
		t.Fatalf("b verifying a's new token: %v", err)
	}
	if got := parsedKID(t, a, mustSign(t, b)); got != info.ID {
		t.Fatalf("b signs with %s, want %s", got, info.ID)
	}

	// Concurrent rotations serialise: both succeed and one key stays active.
	var wg sync.WaitGroup
	for _, r := range []*Ring{a, b} {
		wg.Go(func() {
			if _, err := r.Rotate(t.Context()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	rec := storedRing(t, st)
	if len(rec.Keys) != 4 {
		t.Fatalf("stored ring has %d keys after three rotations, want 4", len(rec.Keys))
	}
	eventually(t, "both replicas to agree", func() bool {
		return activeID(t, a) == rec.Keys[0].ID && activeID(t, b) == rec.Keys[0].ID
	})
}

func TestConcurrentFirstStart(t *testing.T) {
	st := newStore(t)
	rings := make([]*Ring, 3)
	var wg sync.WaitGroup
	for i := range rings {
		wg.Go(func() {
			r, err := Open(t.Context(), st, Options{})
			if err != nil {
				t.Error(err)
				return
			}
			rings[i] = r
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, r := range rings {
		t.Cleanup(r.Close)
	}
	if rec := storedRing(t, st); len(rec.Keys) != 1 {
		t.Fatalf("stored ring has %d keys, want 1", len(rec.Keys))
	}
	want := storedRing(t, st).Keys[0].ID
	for i, r := range rings {
		if keys := r.Keys(); len(keys) != 1 || keys[0].ID != want {
			t.Fatalf("ring %d keys = %+v, want only %s", i, keys, want)
		}
	}
}

func TestImportIntoExistingRing(t *testing.T) {
	st := newStore(t)
	generated := openRing(t, st, Options{})
	generatedID := activeID(t, generated)

	imported := importRing(t, st, 1)
	wantID := thumbprint(t, fixtureKeys()[1])
	keys := imported.Keys()
	if len(keys) != 2 || keys[0].ID != wantID || keys[0].Status != StatusActive ||
		keys[1].ID != generatedID || keys[1].Status != StatusRetired {
		t.Fatalf("keys after import: %+v", keys)
	}

	info, err := imported.Rotate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	again := importRing(t, st, 1)
	if got := activeID(t, again); got != info.ID {
		t.Fatalf("restarting with the imported key undid a rotation: active %s, want %s", got, info.ID)
	}
	if n := len(storedRing(t, st).Keys); n != 3 {
		t.Fatalf("stored ring has %d keys, want 3", n)
	}
}

// A key rotated out that has expired since is not made active again by a
// restart that imports it.
func TestImportOfExpiredKeyIgnored(t *testing.T) {
	st := newStore(t)
	opts := Options{PrivateKeyPEM: pkcs1PEM(fixtureKeys()[0]), MaxTokenLifetime: 200 * time.Millisecond}
	r := openRing(t, st, opts)
	info, err := r.Rotate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the retired key to be deleted from the store", func() bool {
		return len(storedRing(t, st).Keys) == 1
	})
	again := openRing(t, st, opts)
	if got := activeID(t, again); got != info.ID {
		t.Fatalf("restarting with the imported key reactivated it after it expired: active %s, want %s", got, info.ID)
	}
	if keys := storedRing(t, st).Keys; len(keys) != 1 || keys[0].ID != info.ID {
		t.Fatalf("stored ring after the restart: %+v", keys)
	}
}

func TestRingDeletedAndRecreated(t *testing.T) {
	st := newStore(t)
	r := importRing(t, st, 0)
	if err := st.Delete(t.Context(), ringKey); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the ring to notice the deletion", func() bool { return !r.Ready() })
	if _, err := r.Sign(claims()); !errors.Is(err, ErrNotReady) {
		t.Fatalf("Sign without keys: %v, want ErrNotReady", err)
	}
	if got := string(r.JWKS()); got != `{"keys":[]}` {
		t.Fatalf("JWKS without keys = %s", got)
	}
	info, err := r.Rotate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !r.Ready() || len(r.Keys()) != 1 || activeID(t, r) != info.ID {
		t.Fatalf("after rotating into an empty store: ready %v, keys %+v", r.Ready(), r.Keys())
	}
}

func TestOpenRejectsCorruptRing(t *testing.T) {
	other := fixtureKeys()[1]
	valid, err := newKeyRecord(fixtureKeys()[0], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	second, err := newKeyRecord(other, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	mismatched := valid
	mismatched.ID = thumbprint(t, other)
	retired := valid
	retired.Retired, retired.Expires = time.Now(), time.Now().Add(time.Hour)
	encode := func(rec ringRecord) []byte {
		it, err := rec.item()
		if err != nil {
			t.Fatal(err)
		}
		return it.Value
	}
	tests := []struct {
		name  string
		value []byte
	}{
		{"not JSON", []byte("{")},
		{"kid does not match the key", encode(ringRecord{Keys: []keyRecord{mismatched}})},
		{"no active key", encode(ringRecord{Keys: []keyRecord{retired}})},
		{"duplicate key", encode(ringRecord{Keys: []keyRecord{valid, valid}})},
		{"two active keys", encode(ringRecord{Keys: []keyRecord{valid, second}})},
		{"private key not PEM", encode(ringRecord{Keys: []keyRecord{{ID: valid.ID, Created: valid.Created, PrivateKey: "x"}}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newStore(t)
			if _, err := st.Put(t.Context(), store.Item{Key: ringKey, Value: tt.value}); err != nil {
				t.Fatal(err)
			}
			r, err := Open(t.Context(), st, Options{})
			if err == nil {
				r.Close()
				t.Fatal("Open accepted a corrupt ring")
			}
		})
	}
}

func TestActivatedRefusesKeyInRing(t *testing.T) {
	now := time.Now()
	a, err := newKeyRecord(fixtureKeys()[0], now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newKeyRecord(fixtureKeys()[1], now)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := ringRecord{Keys: []keyRecord{a}}.activated(b, now, time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []keyRecord{a, b} {
		if _, err := rec.activated(k, now, time.Hour, false); !errors.Is(err, errKeyPresent) {
			t.Fatalf("activating %s again: %v, want errKeyPresent", k.ID, err)
		}
	}
	// Once the retired key has expired it leaves the ring for good.
	later, _ := rec.pruned(now.Add(time.Hour))
	if len(later.Keys) != 1 || later.Keys[0].ID != b.ID || len(later.Expired) != 1 || later.Expired[0] != a.ID {
		t.Fatalf("ring after the retired key expired: %+v", later)
	}
	if _, err := later.activated(a, now.Add(time.Hour), time.Hour, false); !errors.Is(err, errKeyExpired) {
		t.Fatalf("re-activating an expired key: %v, want errKeyExpired", err)
	}
}

func TestRetiredKeyStopsAtExpiryBeforeRefresh(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	r := openRing(t, newStore(t), Options{PrivateKeyPEM: pkcs1PEM(fixtureKeys()[0]), MaxTokenLifetime: time.Hour, Now: clock})
	oldToken := mustSign(t, r)
	if _, err := r.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(time.Hour - time.Second)
	mu.Unlock()
	if _, err := parse(r, oldToken); err != nil {
		t.Fatalf("old token a second before its key expires: %v", err)
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	if _, err := parse(r, oldToken); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old token once its key expired: %v, want ErrUnknownKey", err)
	}
}

func BenchmarkKeyfunc(b *testing.B) {
	st, err := bolt.Open(filepath.Join(b.TempDir(), "gatehouse.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	r, err := Open(b.Context(), st, Options{PrivateKeyPEM: pkcs1PEM(fixtureKeys()[0])})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	token, err := r.Sign(claims())
	if err != nil {
		b.Fatal(err)
	}
	parsed, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Keyfunc(parsed); err != nil {
			b.Fatal(err)
		}
	}
}

func TestNotReadyWhenStoreCloses(t *testing.T) {
	st := newStore(t)
	r := importRing(t, st, 0)
	if !r.Ready() {
		t.Fatal("ring not ready after Open")
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the ring to report the lost store", func() bool { return !r.Ready() })
	if _, err := parse(r, mustSign(t, r)); err != nil {
		t.Fatalf("the loaded keys stop working without the store: %v", err)
	}
}

// Tokens without kid (Service Center's) verify with the active key and
// with imported keys until they expire, retired or not; a generated key
// stops verifying them when it is retired.
func TestKidlessTokensAfterRotation(t *testing.T) {
	clk := testclock.New(time.Now())
	const lifetime = 2 * time.Hour
	generated := openRing(t, newStore(t), Options{Now: clk.Now, MaxTokenLifetime: lifetime})
	genNoKID := signWith(t, jwt.SigningMethodRS512, generated.view.Load().signing(clk.Now()).priv, nil)
	if _, err := parse(generated, genNoKID); err != nil {
		t.Fatalf("active generated key: %v", err)
	}
	if _, err := generated.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := parse(generated, genNoKID); err == nil {
		t.Fatal("a token without kid verified with a retired generated key")
	}

	st := newStore(t)
	imported := openRing(t, st, Options{Now: clk.Now, MaxTokenLifetime: lifetime, PrivateKeyPEM: pkcs1PEM(fixtureKeys()[0])})
	noKID := signWith(t, jwt.SigningMethodRS512, fixtureKeys()[0], nil)
	if _, err := imported.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := parse(imported, noKID); err != nil {
		t.Fatalf("retired imported key: %v", err)
	}
	clk.Advance(lifetime)
	if _, err := parse(imported, noKID); err == nil {
		t.Fatal("a token without kid verified with an expired imported key")
	}
}
