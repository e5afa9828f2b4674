package httpapi_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/testclock"
)

func TestEngineLogin(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	root := ts.root()
	ts.mkAccount(root, "inactive1", pw("i1"), "developer")
	ts.mkAccount(root, "victim1", pw("v1"), "developer")
	wantOK(t, ts.call("PUT", "/v4/accounts/inactive1", root, map[string]any{"roles": []string{"developer"}, "status": "inactive"}))

	t.Run("success", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		r := ts.loginReply("root", rootPW)
		wantStatus(t, r, 200)
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("Content-Type %q", ct)
		}
		var body map[string]string
		r.json(t, &body)
		if len(body) != 1 || body["token"] == "" {
			t.Fatalf("body %s, want only a token", r.body)
		}
		now := time.Now()
		header, claims := tokenParts(t, body["token"])
		if header["alg"] != "RS512" || header["typ"] != "JWT" || header["kid"] != activeKID(t, ts) || len(header) != 3 {
			t.Fatalf("header %v", header)
		}
		if claims["account"] != "root" || len(claims) != 6 {
			t.Fatalf("claims %v", claims)
		}
		// The credential version: root's record id and watermark.
		var acc struct{ ID string }
		ts.call("GET", "/v4/accounts/root", root, nil).json(t, &acc)
		if cred, _ := claims["cred"].(map[string]any); len(cred) != 2 || cred["id"] != acc.ID || cred["ver"] == nil {
			t.Fatalf("cred claim %v, want root's id %s and a version", claims["cred"], acc.ID)
		}
		if roles, _ := claims["roles"].([]any); len(roles) != 1 || roles[0] != "admin" {
			t.Fatalf("roles %v", claims["roles"])
		}
		exp, iat := unixClaim(t, claims, "exp"), unixClaim(t, claims, "iat")
		if d := exp.Sub(now) - 12*time.Hour; d < -5*time.Second || d > 5*time.Second {
			t.Fatalf("exp %v is not 12h after %v", exp, now)
		}
		if d := iat.Sub(now); d < -5*time.Second || d > 5*time.Second {
			t.Fatalf("iat %v, now %v", iat, now)
		}
		_, claims2 := tokenParts(t, ts.root())
		if jti, _ := claims["jti"].(string); jti == "" || jti == claims2["jti"] {
			t.Fatalf("jti %v and %v must be distinct and non-empty", claims["jti"], claims2["jti"])
		}
	})

	t.Run("tokenExpirationTime", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		for _, tc := range []struct {
			ttl  any
			want time.Duration // 0: rejected
		}{
			{"15m", 15 * time.Minute},
			{"24h", 24 * time.Hour},
			{"1h30m", 90 * time.Minute},
			{"", 12 * time.Hour},
			{"14m", 0},
			{"14m59s", 0},
			{"25h", 0},
			{"24h0m1s", 0},
			{"abc", 0},
			{"-1h", 0},
		} {
			r := ts.call("POST", "/v4/token", "", map[string]any{"name": "root", "password": rootPW, "tokenExpirationTime": tc.ttl})
			if tc.want == 0 {
				wantDetail(t, r, 400, "400001", "Invalid parameter(s)", "tokenExpirationTime must be a duration between 15m and 24h")
				continue
			}
			now := time.Now()
			wantStatus(t, r, 200)
			var body struct{ Token string }
			r.json(t, &body)
			_, claims := tokenParts(t, body.Token)
			if d := unixClaim(t, claims, "exp").Sub(now) - tc.want; d < -5*time.Second || d > 5*time.Second {
				t.Fatalf("tokenExpirationTime %v: exp off by %v", tc.ttl, d)
			}
		}
	})

	t.Run("bad JSON", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		for _, body := range []string{`{"name":`, `not json`, ``, `   `, `[]`, `"root"`, `{"name":"root"} x`} {
			wantErr(t, ts.call("POST", "/v4/token", "", body), 400, "400001", "Invalid parameter(s)")
		}
	})

	t.Run("wrong types", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		for body, detail := range map[string]string{
			`{"name":5,"password":"x"}`:                                     "field name must be a string",
			`{"name":"root","password":["x"]}`:                              "field password must be a string",
			`{"name":"root","password":"x","tokenExpirationTime":3600}`:     "field tokenExpirationTime must be a string",
			`{"name":{"a":1},"password":"x"}`:                               "field name must be a string",
			`{"name":"root","password":true}`:                               "field password must be a string",
			`[{"name":"root"}]`:                                             "the body must be an object",
			`{"name":"root","password":"` + rootPW + `","extra":{"x":[1]}}`: "",
		} {
			r := ts.call("POST", "/v4/token", "", body)
			if detail == "" { // unknown fields are ignored
				wantStatus(t, r, 200)
				continue
			}
			wantDetail(t, r, 400, "400001", "Invalid parameter(s)", detail)
		}
	})

	t.Run("failures look alike", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		// Distinct names keep these failures below the lockout threshold.
		replies := []reply{
			ts.loginReply("nosuchuser1", rootPW),
			ts.loginReply("victim1", "Wr0ng-Password!"),
			ts.call("POST", "/v4/token", "", map[string]string{"name": "victim1"}),
			ts.call("POST", "/v4/token", "", map[string]string{"name": "nosuchuser2"}),
			ts.call("POST", "/v4/token", "", map[string]string{"password": rootPW}),
			ts.call("POST", "/v4/token", "", `{}`),
		}
		for i, r := range replies {
			wantErr(t, r, 401, "401202", "User name or password is wrong")
			if !bytes.Equal(r.body, replies[0].body) {
				t.Fatalf("failure %d: body %s differs from %s", i, r.body, replies[0].body)
			}
		}
	})

	t.Run("oversize body", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		big := `{"name":"root","password":"` + strings.Repeat("a", 64<<10) + `"}`
		wantErr(t, ts.call("POST", "/v4/token", "", big), 413, "413001", "Request entity too large")
	})

	t.Run("inactive", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		wantErr(t, ts.loginReply("inactive1", pw("i1")), 403, "403206", "Account is inactive")
		wantErr(t, ts.loginReply("inactive1", pw("i1")+"x"), 401, "401202", "User name or password is wrong")
	})
}

// activeKID returns the kid of the active key from the JWKS.
func activeKID(t *testing.T, ts *testServer) string {
	t.Helper()
	return jwks(t, ts)[0].Kid
}

// jwk is one key of the JWKS.
type jwk struct {
	Kty, Kid, Alg, Use, N, E string
}

func jwks(t *testing.T, ts *testServer) []jwk {
	t.Helper()
	r := ts.call("GET", "/.well-known/jwks.json", "", nil)
	wantStatus(t, r, 200)
	var set struct{ Keys []jwk }
	r.json(t, &set)
	if len(set.Keys) == 0 {
		t.Fatalf("empty JWKS %s", r.body)
	}
	for _, k := range set.Keys {
		if k.Kty != "RSA" || k.Alg != "RS512" || k.Use != "sig" || k.Kid == "" || k.N == "" || k.E == "" {
			t.Fatalf("JWKS key %+v", k)
		}
	}
	return set.Keys
}

// publicKey rebuilds the RSA public key of a JWKS entry.
func publicKey(t *testing.T, k jwk) *rsa.PublicKey {
	t.Helper()
	n, err := base64.RawURLEncoding.DecodeString(k.N)
	if err != nil {
		t.Fatal(err)
	}
	e, err := base64.RawURLEncoding.DecodeString(k.E)
	if err != nil {
		t.Fatal(err)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
}

// segment base64url-encodes v as JSON.
func segment(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// flipChar changes the character at i of a base64url string.
func flipChar(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

func TestEngineAuthorizationHeader(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	root := ts.root()
	kid := activeKID(t, ts)
	pub := publicKey(t, jwks(t, ts)[0])
	parts := strings.Split(root, ".")
	claims := map[string]any{"account": "root", "roles": []string{"admin"},
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(), "jti": "forged"}

	pkix, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pkixPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})
	pkcs1PEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(pub)})
	hmacWith := func(key []byte) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims(claims))
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaWith := func(kid string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS512, jwt.MapClaims(claims))
		tok.Header["kid"] = kid
		s, err := tok.SignedString(other)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// The payload of root's token with a role and an account changed.
	_, rootClaims := tokenParts(t, root)
	rootClaims["account"] = "someone"
	tamperedPayload := parts[0] + "." + segment(t, rootClaims) + "." + parts[2]

	const invalidHeader = "invalid auth header"
	for _, tc := range []struct {
		name, header string
		status       int
		code, detail string
	}{
		{"missing", "", 401, "401204", ""},
		{"basic scheme", "Basic x", 401, "401201", invalidHeader},
		{"basic with token", "Basic " + root, 401, "401201", invalidHeader},
		{"bearer alone", "Bearer", 401, "401201", invalidHeader},
		{"bearer and space", "Bearer ", 401, "401201", invalidHeader},
		{"three parts", "Bearer a b", 401, "401201", invalidHeader},
		{"two spaces", "Bearer  " + root, 401, "401201", invalidHeader},
		{"token alone", root, 401, "401201", invalidHeader},
		{"lower-case bearer", "bearer " + root, 200, "", ""},
		{"upper-case bearer", "BEARER " + root, 200, "", ""},
		{"alg none", "Bearer " + segment(t, map[string]any{"alg": "none", "typ": "JWT", "kid": kid}) + "." + segment(t, claims) + ".", 401, "401201", "token signature is invalid"},
		{"alg none unsigned", "Bearer " + segment(t, map[string]any{"alg": "none", "typ": "JWT"}) + "." + segment(t, claims) + ".", 401, "401201", "token signature is invalid"},
		{"HS512 with PKIX public key", "Bearer " + hmacWith(pkixPEM), 401, "401201", "token signature is invalid"},
		{"HS512 with PKCS1 public key", "Bearer " + hmacWith(pkcs1PEM), 401, "401201", "token signature is invalid"},
		{"HS512 with modulus", "Bearer " + hmacWith(pub.N.Bytes()), 401, "401201", "token signature is invalid"},
		{"tampered signature", "Bearer " + parts[0] + "." + parts[1] + "." + flipChar(parts[2], 10), 401, "401201", "token signature is invalid"},
		{"truncated signature", "Bearer " + parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])/8*4], 401, "401201", "token signature is invalid"},
		{"signature with non-zero trailing bits", "Bearer " + root[:len(root)-1] + "B", 401, "401201", "token is malformed"},
		{"tampered payload", "Bearer " + tamperedPayload, 401, "401201", "token signature is invalid"},
		{"other key with the real kid", "Bearer " + rsaWith(kid), 401, "401201", "token signature is invalid"},
		{"unknown kid", "Bearer " + rsaWith("nosuchkid"), 401, "401201", "token is unverifiable: unknown key id"},
		{"garbage", "Bearer garbage", 401, "401201", "token is malformed"},
		{"garbage segments", "Bearer abc.def.ghi", 401, "401201", "token is malformed"},
		{"empty segments", "Bearer ..", 401, "401201", "token is malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := ts.as(t)
			var r reply
			if tc.header == "" {
				r = ts.call("GET", "/v4/accounts", "", nil)
			} else {
				r = ts.call("GET", "/v4/accounts", "", nil, "Authorization", tc.header)
			}
			if tc.status == 200 {
				wantStatus(t, r, 200)
				return
			}
			msg := map[string]string{"401201": "Request unauthorized", "401204": "No authorization header"}[tc.code]
			wantDetail(t, r, tc.status, tc.code, msg, tc.detail)
			for _, secret := range []string{root, parts[2]} {
				if strings.Contains(string(r.body), secret) {
					t.Fatalf("error echoes the token: %s", r.body)
				}
			}
		})
	}
}

func TestEngineTokenExpiry(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Now())
	ts := start(t, func(c *server.Config) { c.TokenTTL, c.Now = 3*time.Second, clock.Now })
	cached := ts.root() // verified before it expires: answered from the cache after
	fresh := ts.root()  // first verified after it expired
	wantStatus(t, ts.call("GET", "/v4/self-perms", cached, nil), 200)
	_, claims := tokenParts(t, cached)
	exp := unixClaim(t, claims, "exp")
	if d := exp.Sub(clock.Now()); d > 3*time.Second {
		t.Fatalf("exp %v is more than the 3s TTL away", exp)
	}
	clock.Advance(exp.Sub(clock.Now()) + 1100*time.Millisecond)
	for _, tok := range []string{cached, fresh} {
		wantErr(t, ts.call("GET", "/v4/self-perms", tok, nil), 401, "401205", "Token is expired")
	}
}
