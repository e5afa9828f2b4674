package verifier_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/pkg/verifier"
)

const rootPW = servertest.RootPassword

// config is a server configuration on 127.0.0.1:0 over dir.
func config(dir string) server.Config {
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.RootPassword, cfg.RateLimit = "127.0.0.1:0", dir, rootPW, 0
	cfg.Logger = slog.New(slog.DiscardHandler)
	return cfg
}

// gatehouse starts a real server and returns its base URL.
func gatehouse(t *testing.T) string {
	t.Helper()
	return servertest.Start(t, nil).Base
}

// runWithGatehouse runs the tests with the examples' Gatehouse.
func runWithGatehouse(m *testing.M) int {
	dir, err := os.MkdirTemp("", "gatehouse-example")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	srv, err := server.Start(context.Background(), config(dir))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer srv.Shutdown(context.Background())
	gatehouseURL = "http://" + srv.Addr()
	b, _ := json.Marshal(map[string]string{"name": "root", "password": rootPW})
	resp, err := http.Post(gatehouseURL+"/v4/token", "application/json", bytes.NewReader(b))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer resp.Body.Close()
	var out struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Token == "" {
		fmt.Fprintln(os.Stderr, "example login failed:", resp.Status, err)
		return 1
	}
	exampleToken = out.Token
	return m.Run()
}

// post sends a JSON request with an optional token and decodes a JSON
// answer into out (if not nil).
func post(t *testing.T, url, token string, body, out any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatal(err)
		}
	}
}

func login(t *testing.T, base string) string {
	t.Helper()
	var out struct{ Token string }
	post(t, base+"/v4/token", "", map[string]string{"name": "root", "password": rootPW}, &out)
	return out.Token
}

// counter is an HTTP client that counts its requests.
type counter struct{ n atomic.Int32 }

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestVerify(t *testing.T) {
	t.Parallel()
	base := gatehouse(t)
	tok := login(t, base)
	ctx := context.Background()
	v, err := verifier.New(ctx, verifier.Options{JWKSURL: base + "/.well-known/jwks.json"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Account != "root" || len(c.Roles) != 1 || c.Roles[0] != "admin" || c.KeyID == "" || c.ID == "" {
		t.Fatalf("claims %+v", c)
	}
	if d := time.Until(c.ExpiresAt); d < 11*time.Hour || d > 12*time.Hour+time.Minute {
		t.Fatalf("exp in %s", d)
	}
	if c.IssuedAt.IsZero() {
		t.Fatal("no iat")
	}
	if _, err := v.VerifyHeader(ctx, "bearer "+tok); err != nil {
		t.Fatalf("lower-case scheme: %v", err)
	}
	for hdr, want := range map[string]error{
		"":                                    verifier.ErrNoToken,
		"Basic " + tok:                        verifier.ErrBadHeader,
		"Bearer":                              verifier.ErrBadHeader,
		"Bearer " + tok + " x":                verifier.ErrBadHeader,
		"Bearer " + tok[:len(tok)-4] + "AAAA": verifier.ErrInvalid,
		"Bearer not-a-jwt":                    verifier.ErrInvalid,
	} {
		if _, err := v.VerifyHeader(ctx, hdr); !errors.Is(err, want) {
			t.Errorf("%.20q: got %v, want %v", hdr, err, want)
		}
	}

	// Past its exp the token is refused.
	late, err := verifier.New(ctx, verifier.Options{JWKSURL: base + "/.well-known/jwks.json",
		Now: func() time.Time { return time.Now().Add(13 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := late.Verify(ctx, tok); !errors.Is(err, verifier.ErrExpired) {
		t.Fatalf("expired: %v", err)
	}
}

// TestVerifyKeyRotation checks that after a rotation tokens of the new key
// verify (after one fetch) and tokens of the old key still do.
func TestVerifyKeyRotation(t *testing.T) {
	t.Parallel()
	base := gatehouse(t)
	ctx := context.Background()
	fetches := &counter{}
	v, err := verifier.New(ctx, verifier.Options{
		JWKSURL: base + "/.well-known/jwks.json", HTTPClient: &http.Client{Transport: fetches},
		MinRefreshInterval: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	oldTok := login(t, base)
	time.Sleep(2 * time.Millisecond)
	var rotated struct{ ID string }
	post(t, base+"/v4/keys/rotate", oldTok, map[string]bool{"immediate": true}, &rotated)
	newTok := login(t, base)

	nc, err := v.Verify(ctx, newTok)
	if err != nil {
		t.Fatalf("new key: %v", err)
	}
	oc, err := v.Verify(ctx, oldTok)
	if err != nil {
		t.Fatalf("old key: %v", err)
	}
	if nc.KeyID != rotated.ID || oc.KeyID == rotated.ID {
		t.Fatalf("kids: new %s old %s rotated %s", nc.KeyID, oc.KeyID, rotated.ID)
	}
	if n := fetches.n.Load(); n != 2 {
		t.Fatalf("%d fetches of the key set, want 2", n)
	}
}

// TestVerifyUnknownKey checks tokens of keys Gatehouse never published,
// and that the fetches they cause are rate-limited.
func TestVerifyUnknownKey(t *testing.T) {
	t.Parallel()
	base := gatehouse(t)
	ctx := context.Background()
	real := login(t, base)
	fetches := &counter{}
	clk := &clock{now: time.Now()}
	v, err := verifier.New(ctx, verifier.Options{
		JWKSURL: base + "/.well-known/jwks.json", HTTPClient: &http.Client{Transport: fetches},
		MinRefreshInterval: 30 * time.Second, Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	own, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{"account": "root", "roles": []string{"admin"}, "exp": time.Now().Add(time.Hour).Unix()}
	sign := func(kid string) string {
		tk := jwt.NewWithClaims(jwt.SigningMethodRS512, claims)
		tk.Header["kid"] = kid
		s, err := tk.SignedString(own)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	clk.add(31 * time.Second)
	if _, err := v.Verify(ctx, sign("forged-1")); !errors.Is(err, verifier.ErrUnknownKey) {
		t.Fatalf("unknown kid: %v", err)
	}
	if n := fetches.n.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2 (an unknown kid fetches again)", n)
	}
	clk.add(time.Second)
	if _, err := v.Verify(ctx, sign("forged-2")); !errors.Is(err, verifier.ErrUnknownKey) {
		t.Fatalf("unknown kid: %v", err)
	}
	if n := fetches.n.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2 (refetch is rate-limited)", n)
	}

	// A foreign key claiming Gatehouse's kid fails on the signature.
	parts := strings.Split(real, ".")
	hdr, _ := jwt.NewParser().DecodeSegment(parts[0])
	var h struct{ Kid string }
	_ = json.Unmarshal(hdr, &h)
	if _, err := v.Verify(ctx, sign(h.Kid)); !errors.Is(err, verifier.ErrInvalid) {
		t.Fatalf("foreign key with a known kid: %v", err)
	}

	// alg none and HMAC keyed with public material are refused.
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	hs := jwt.NewWithClaims(jwt.SigningMethodHS512, claims)
	hs.Header["kid"] = h.Kid
	hmac, _ := hs.SignedString([]byte("public"))
	for name, tok := range map[string]string{"none": none, "HS512": hmac} {
		if _, err := v.Verify(ctx, tok); !errors.Is(err, verifier.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestVerifyDoesNotWaitForOldSetRefresh checks that while the key set is
// fetched again for its age, and Gatehouse is slow to answer, other
// verifications go on with the set they have.
func TestVerifyDoesNotWaitForOldSetRefresh(t *testing.T) {
	t.Parallel()
	base := gatehouse(t)
	ctx := context.Background()
	tok := login(t, base)
	var served atomic.Int32
	fetching, release := make(chan struct{}), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if served.Add(1) > 1 {
			close(fetching)
			<-release
		}
		resp, err := http.Get(base + "/.well-known/jwks.json")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(slow.Close)
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock)
	clk := &clock{now: time.Now()}
	v, err := verifier.New(ctx, verifier.Options{JWKSURL: slow.URL, MaxKeyAge: time.Minute, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	clk.add(2 * time.Minute)
	first := make(chan error, 1)
	go func() {
		_, err := v.Verify(ctx, tok)
		first <- err
	}()
	<-fetching
	other := make(chan error, 1)
	go func() {
		_, err := v.Verify(ctx, tok)
		other <- err
	}()
	select {
	case err := <-other:
		if err != nil {
			t.Fatalf("verification during a refresh: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a verification waited for the key set fetch of another")
	}
	unblock()
	if err := <-first; err != nil {
		t.Fatalf("verification that refreshed the set: %v", err)
	}
}

func TestNewFailsWithoutKeys(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	if _, err := verifier.New(context.Background(), verifier.Options{JWKSURL: srv.URL}); err == nil {
		t.Fatal("New accepted a missing key set")
	}
	empty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, `{"keys":[]}`) }))
	defer empty.Close()
	if _, err := verifier.New(context.Background(), verifier.Options{JWKSURL: empty.URL}); err == nil {
		t.Fatal("New accepted an empty key set")
	}
	if _, err := verifier.New(context.Background(), verifier.Options{}); err == nil {
		t.Fatal("New accepted no URL")
	}
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	base := gatehouse(t)
	tok := login(t, base)
	ctx := context.Background()
	mk := func(now func() time.Time) *httptest.Server {
		v, err := verifier.New(ctx, verifier.Options{JWKSURL: base + "/.well-known/jwks.json", Now: now})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, ok := verifier.FromContext(r.Context())
			if !ok {
				http.Error(w, "no claims", 500)
				return
			}
			_, _ = io.WriteString(w, c.Account)
		})))
		t.Cleanup(srv.Close)
		return srv
	}
	now := mk(nil)
	later := mk(func() time.Time { return time.Now().Add(13 * time.Hour) })
	for _, tc := range []struct {
		srv          *httptest.Server
		auth         string
		status       int
		code, answer string
	}{
		{now, "Bearer " + tok, 200, "", "root"},
		{now, "", 401, "401204", ""},
		{now, "Token " + tok, 401, "401201", ""},
		{now, "Bearer x.y.z", 401, "401201", ""},
		{later, "Bearer " + tok, 401, "401205", ""},
	} {
		req, _ := http.NewRequest("GET", tc.srv.URL, nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct{ ErrorCode string }
		_ = json.Unmarshal(body, &e)
		if resp.StatusCode != tc.status || e.ErrorCode != tc.code || (tc.answer != "" && string(body) != tc.answer) {
			t.Errorf("%.20q: %d %s", tc.auth, resp.StatusCode, body)
		}
	}
}

// BenchmarkVerify measures the local verification of one engine token
// (an RS512 signature check against a cached 2048-bit key).
func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	v, err := verifier.New(ctx, verifier.Options{JWKSURL: gatehouseURL + "/.well-known/jwks.json"})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := v.Verify(ctx, exampleToken); err != nil {
			b.Fatal(err)
		}
	}
}

// serviceCenter returns the tokens of testdata/service-center by
// account, and a clock at which they are an hour old.
func serviceCenter(t *testing.T) (map[string]string, func() time.Time) {
	t.Helper()
	raw, err := os.ReadFile("testdata/service-center/tokens.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		IssuedAt int64             `json:"issued_at_unix"`
		Tokens   map[string]string `json:"tokens"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	at := time.Unix(f.IssuedAt, 0).Add(time.Hour)
	return f.Tokens, func() time.Time { return at }
}

// firstKID returns the kid of the first key of the key set at base.
func firstKID(t *testing.T, base string) string {
	t.Helper()
	var set struct{ Keys []struct{ Kid string } }
	servertest.Send(t, "GET", base+"/.well-known/jwks.json", "", nil).JSON(t, &set)
	if len(set.Keys) == 0 {
		t.Fatal("empty key set")
	}
	return set.Keys[0].Kid
}

// TestVerifyWithoutKidTriesEveryKey: a Service Center token, without
// kid, signed by the key Gatehouse imported from Service Center,
// verifies while a pre-published key, which signs nothing yet, is the
// first of the key set; a token without kid of a key Gatehouse does not
// publish does not.
func TestVerifyWithoutKidTriesEveryKey(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, func(c *server.Config) { c.PrivateKeyFile = "testdata/service-center/private.pem" })
	var rotated struct{ ID, Status string }
	send(t, s, "POST", "/v4/keys/rotate", s.Root(), nil).JSON(t, &rotated)
	if rotated.Status != "pending" || firstKID(t, s.Base) != rotated.ID {
		t.Fatalf("rotation %+v: want a pending key first in the key set", rotated)
	}
	tokens, now := serviceCenter(t)
	ctx := context.Background()
	v, err := verifier.New(ctx, verifier.Options{JWKSURL: s.Base + "/.well-known/jwks.json", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(ctx, tokens["alice"])
	if err != nil {
		t.Fatalf("Service Center token: %v", err)
	}
	if c.Account != "alice" || c.KeyID != "" || c.ID != "" || !c.IssuedAt.IsZero() {
		t.Fatalf("claims %+v", c)
	}

	own, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := jwt.NewWithClaims(jwt.SigningMethodRS512, jwt.MapClaims{"account": "alice",
		"roles": []string{"admin"}, "exp": now().Add(time.Hour).Unix()}).SignedString(own)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, forged); !errors.Is(err, verifier.ErrInvalid) {
		t.Fatalf("token without kid of an unpublished key: %v", err)
	}
}
