package password

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"
)

const testPassword = "Corr3ct-Horse"

// defaultHasher is shared by the tests: each construction costs a hash.
var defaultHasher = sync.OnceValues(func() (*Hasher, error) { return NewHasher(DefaultParams()) })

func testHasher(tb testing.TB) *Hasher {
	tb.Helper()
	h, err := defaultHasher()
	if err != nil {
		tb.Fatalf("NewHasher(DefaultParams()): %v", err)
	}
	return h
}

func TestParamsValidate(t *testing.T) {
	with := func(change func(*Params)) Params {
		p := DefaultParams()
		change(&p)
		return p
	}
	tests := []struct {
		name  string
		p     Params
		valid bool
	}{
		{"defaults", DefaultParams(), true},
		{"OWASP m=47104,t=1", with(func(p *Params) { p.Memory, p.Time = 47104, 1 }), true},
		{"OWASP m=12288,t=3", with(func(p *Params) { p.Memory, p.Time = 12288, 3 }), true},
		{"OWASP m=9216,t=4", with(func(p *Params) { p.Memory, p.Time = 9216, 4 }), true},
		{"OWASP m=7168,t=5", with(func(p *Params) { p.Memory, p.Time = 7168, 5 }), true},
		{"raised everything", Params{Memory: 65536, Time: 4, Threads: 4, SaltLen: 32, KeyLen: 64}, true},
		{"at the ceilings", Params{Memory: 1 << 20, Time: 16, Threads: 255, SaltLen: 64, KeyLen: 128}, true},
		{"memory just below m=19456,t=2", with(func(p *Params) { p.Memory = 19455 }), false},
		{"t=1 needs m=47104", with(func(p *Params) { p.Time = 1 }), false},
		{"m=47103,t=1", with(func(p *Params) { p.Memory, p.Time = 47103, 1 }), false},
		{"m=7167,t=5", with(func(p *Params) { p.Memory, p.Time = 7167, 5 }), false},
		{"m=7168,t=4", with(func(p *Params) { p.Memory, p.Time = 7168, 4 }), false},
		{"no threads", with(func(p *Params) { p.Threads = 0 }), false},
		{"salt too short", with(func(p *Params) { p.SaltLen = 15 }), false},
		{"key too short", with(func(p *Params) { p.KeyLen = 31 }), false},
		{"memory above 1 GiB", with(func(p *Params) { p.Memory = 1<<20 + 1 }), false},
		{"too many passes", with(func(p *Params) { p.Time = 17 }), false},
		{"salt too long", with(func(p *Params) { p.SaltLen = 65 }), false},
		{"key too long", with(func(p *Params) { p.KeyLen = 129 }), false},
		{"zero", Params{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.valid && err != nil {
				t.Fatalf("Validate(%+v) = %v, want nil", tt.p, err)
			}
			if !tt.valid && !errors.Is(err, ErrInvalidParams) {
				t.Fatalf("Validate(%+v) = %v, want ErrInvalidParams", tt.p, err)
			}
		})
	}
}

func TestNewHasherRejectsInvalidParams(t *testing.T) {
	p := DefaultParams()
	p.Memory = 4096
	if h, err := NewHasher(p); !errors.Is(err, ErrInvalidParams) || h != nil {
		t.Fatalf("NewHasher(%+v) = %v, %v; want nil, ErrInvalidParams", p, h, err)
	}
}

func TestHashFormat(t *testing.T) {
	h := testHasher(t)
	encoded, err := h.Hash(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	phc := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$([A-Za-z0-9+/]{22})\$([A-Za-z0-9+/]{43})$`)
	m := phc.FindStringSubmatch(encoded)
	if m == nil {
		t.Fatalf("Hash = %q, not a PHC argon2id string at default parameters", encoded)
	}
	salt, err := base64.RawStdEncoding.DecodeString(m[1])
	if err != nil {
		t.Fatal(err)
	}
	want := base64.RawStdEncoding.EncodeToString(argon2.IDKey([]byte(testPassword), salt, 2, 19456, 1, 32))
	if m[2] != want {
		t.Fatalf("key = %s, want argon2id(password, salt) = %s", m[2], want)
	}
	again, err := h.Hash(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if again == encoded {
		t.Fatal("two hashes of the same password are equal: salt is not random")
	}
}

func TestVerifyArgon2id(t *testing.T) {
	h := testHasher(t)
	current, err := h.Hash(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	cheaper := DefaultParams()
	cheaper.Memory, cheaper.Time = 7168, 5
	other, err := NewHasher(cheaper)
	if err != nil {
		t.Fatal(err)
	}
	older, err := other.Hash(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		pw         string
		encoded    string
		wantOK     bool
		wantRehash bool
	}{
		{"same parameters", testPassword, current, true, false},
		{"same parameters, wrong password", "Corr3ct-Horsf", current, false, false},
		{"other parameters", testPassword, older, true, true},
		{"other parameters, wrong password", "corr3ct-Horse", older, false, false},
		// echo -n password | argon2 somesalt -id -t 2 -m 16 -p 4 -l 32 -e
		{"reference CLI vector", "password", "$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := h.Verify(tt.pw, tt.encoded)
			if err != nil || ok != tt.wantOK || rehash != tt.wantRehash {
				t.Fatalf("Verify = %v, %v, %v; want %v, %v, nil", ok, rehash, err, tt.wantOK, tt.wantRehash)
			}
		})
	}
}

func TestVerifyBcrypt(t *testing.T) {
	h := testHasher(t)
	generated, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		pw      string
		encoded string
		wantOK  bool
	}{
		{"generated $2a$", testPassword, string(generated), true},
		{"generated $2a$, wrong password", "Corr3ct-Horsf", string(generated), false},
		{"as $2b$", testPassword, "$2b$" + string(generated[4:]), true},
		{"as $2y$", testPassword, "$2y$" + string(generated[4:]), true},
		// crypt_blowfish test vector.
		{"known vector", "U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", true},
		{"known vector, wrong password", "U*V", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := h.Verify(tt.pw, tt.encoded)
			if err != nil || ok != tt.wantOK || rehash != tt.wantOK {
				t.Fatalf("Verify = %v, %v, %v; want %v, %v, nil", ok, rehash, err, tt.wantOK, tt.wantOK)
			}
		})
	}
}

// serviceCenterScrypt hashes pw as Service Center does: simple-scrypt with
// N=1024, r=8, p=1, an 8-byte salt and a 32-byte key.
func serviceCenterScrypt(t *testing.T, pw string) string {
	t.Helper()
	salt := make([]byte, 8)
	if _, err := rand.Read(salt); err != nil {
		t.Fatal(err)
	}
	key, err := scrypt.Key([]byte(pw), salt, 1024, 8, 1, 32)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d$%d$%d$%x$%x", 1024, 8, 1, salt, key)
}

func TestVerifyScrypt(t *testing.T) {
	h := testHasher(t)
	generated := serviceCenterScrypt(t, testPassword)
	// RFC 7914 section 12, third vector, in Service Center's format.
	rfc := "16384$8$1$" + hex.EncodeToString([]byte("SodiumChloride")) + "$" +
		"7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2" +
		"d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887"
	tests := []struct {
		name    string
		pw      string
		encoded string
		wantOK  bool
	}{
		{"generated", testPassword, generated, true},
		{"generated, wrong password", "Corr3ct-Horsf", generated, false},
		{"upper-case hex", testPassword, strings.ToUpper(generated), true},
		{"RFC 7914 vector", "pleaseletmein", rfc, true},
		{"RFC 7914 vector, wrong password", "pleaseletmeim", rfc, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := h.Verify(tt.pw, tt.encoded)
			if err != nil || ok != tt.wantOK || rehash != tt.wantOK {
				t.Fatalf("Verify = %v, %v, %v; want %v, %v, nil", ok, rehash, err, tt.wantOK, tt.wantOK)
			}
		})
	}
}

func TestVerifyRejectsMalformedHashes(t *testing.T) {
	h := testHasher(t)
	const (
		salt = "c29tZXNhbHQ"                                 // "somesalt"
		key  = "GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo" // 32 bytes
		hexS = "0102030405060708"
		hexK = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	)
	argon := func(version, costs, salt, key string) string {
		return "$argon2id$" + version + "$" + costs + "$" + salt + "$" + key
	}
	sc := func(costs string) string { return costs + "$" + hexS + "$" + hexK }
	bcryptHash := "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
	tests := []struct{ name, encoded string }{
		{"empty", ""},
		{"plain text", testPassword},
		{"argon2id prefix only", "$argon2id$"},
		{"argon2id without key", "$argon2id$v=19$m=65536,t=2,p=4$" + salt},
		{"argon2id with extra field", argon("v=19", "m=65536,t=2,p=4", salt, key) + "$x"},
		{"argon2i", "$argon2i$v=19$m=65536,t=2,p=4$" + salt + "$" + key},
		{"argon2d", "$argon2d$v=19$m=65536,t=2,p=4$" + salt + "$" + key},
		{"argon2 version 16", argon("v=16", "m=65536,t=2,p=4", salt, key)},
		{"missing version", "$argon2id$m=65536,t=2,p=4$" + salt + "$" + key},
		{"salt with bad base64", argon("v=19", "m=65536,t=2,p=4", "c29t*XNhbHQ", key)},
		{"padded salt", argon("v=19", "m=65536,t=2,p=4", "c29tZXNhbHQ=", key)},
		{"key with bad base64", argon("v=19", "m=65536,t=2,p=4", salt, key[:42]+"!")},
		{"url-safe key", argon("v=19", "m=65536,t=2,p=4", salt, strings.ReplaceAll(key, "/", "_"))},
		{"non-numeric memory", argon("v=19", "m=lots,t=2,p=4", salt, key)},
		{"negative memory", argon("v=19", "m=-1,t=2,p=4", salt, key)},
		{"signed memory", argon("v=19", "m=+65536,t=2,p=4", salt, key)},
		{"memory overflows 32 bits", argon("v=19", "m=4294967296,t=2,p=4", salt, key)},
		{"memory above 1 GiB", argon("v=19", "m=1048577,t=2,p=4", salt, key)},
		{"memory below 8 per thread", argon("v=19", "m=31,t=1,p=4", salt, key)},
		{"zero passes", argon("v=19", "m=65536,t=0,p=4", salt, key)},
		{"too many passes", argon("v=19", "m=65536,t=17,p=4", salt, key)},
		{"zero threads", argon("v=19", "m=65536,t=2,p=0", salt, key)},
		{"threads overflow 8 bits", argon("v=19", "m=65536,t=2,p=256", salt, key)},
		{"missing threads", argon("v=19", "m=65536,t=2", salt, key)},
		{"reordered parameters", argon("v=19", "t=2,m=65536,p=4", salt, key)},
		{"extra parameter", argon("v=19", "m=65536,t=2,p=4,k=1", salt, key)},
		{"spaces in parameters", argon("v=19", "m=65536, t=2, p=4", salt, key)},
		{"salt too short", argon("v=19", "m=65536,t=2,p=4", "c2FsdA", key)},
		{"key too short", argon("v=19", "m=65536,t=2,p=4", salt, "a2V5")},
		{"bcrypt truncated", bcryptHash[:40]},
		{"bcrypt bad cost", "$2a$xx" + bcryptHash[6:]},
		{"bcrypt cost 31", "$2a$31" + bcryptHash[6:]},
		{"bcrypt bad salt", "$2a$05$!!!!!!!!!!!!!!!!!!!!!!" + bcryptHash[29:]},
		{"unknown bcrypt variant", "$2x$" + bcryptHash[4:]},
		{"scrypt with four fields", "1024$8$1$" + hexS},
		{"scrypt N not a power of two", sc("1000$8$1")},
		{"scrypt N of 1", sc("1$8$1")},
		{"scrypt N above 2^20", sc("2097152$8$1")},
		{"scrypt memory above 1 GiB", sc("1048576$16$1")},
		{"scrypt work above 2^24", sc("1048576$8$4")},
		{"scrypt r of 0", sc("1024$0$1")},
		{"scrypt p of 0", sc("1024$8$0")},
		{"scrypt non-numeric N", sc("N$8$1")},
		{"scrypt negative r", sc("1024$-8$1")},
		{"scrypt bad salt hex", "1024$8$1$zz$" + hexK},
		{"scrypt odd key hex", "1024$8$1$" + hexS + "$" + hexK[1:]},
		{"scrypt salt too short", "1024$8$1$0102$" + hexK},
		{"scrypt key too long", "1024$8$1$" + hexS + "$" + strings.Repeat("00", 129)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := h.Verify(testPassword, tt.encoded)
			if !errors.Is(err, ErrInvalidHash) || ok || rehash {
				t.Fatalf("Verify(%q) = %v, %v, %v; want false, false, ErrInvalidHash", tt.encoded, ok, rehash, err)
			}
			if strings.Contains(err.Error(), testPassword) {
				t.Fatalf("error %q contains the password", err)
			}
		})
	}
}

func TestVerifyDummyUsesHasherParams(t *testing.T) {
	h := testHasher(t)
	p, _, _, err := parseArgon2id(h.dummy)
	if err != nil {
		t.Fatalf("dummy hash %q: %v", h.dummy, err)
	}
	if p != h.params {
		t.Fatalf("dummy hash parameters = %+v, want %+v", p, h.params)
	}
	if ok, _, err := h.Verify(testPassword, h.dummy); ok || err != nil {
		t.Fatalf("Verify(dummy) = %v, %v; want false, nil", ok, err)
	}
	h.VerifyDummy(testPassword)
}

func TestConcurrentHashAndVerify(t *testing.T) {
	h := testHasher(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		wg.Go(func() {
			pw := fmt.Sprintf("%s-%d", testPassword, i)
			encoded, err := h.Hash(pw)
			if err != nil {
				errs <- err
				return
			}
			if ok, rehash, err := h.Verify(pw, encoded); !ok || rehash || err != nil {
				errs <- fmt.Errorf("Verify(%q) = %v, %v, %v", pw, ok, rehash, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkHash(b *testing.B) {
	h := testHasher(b)
	for b.Loop() {
		if _, err := h.Hash(testPassword); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	h := testHasher(b)
	encoded, err := h.Hash(testPassword)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, _, err := h.Verify(testPassword, encoded); !ok || err != nil {
			b.Fatalf("Verify = %v, %v", ok, err)
		}
	}
}
