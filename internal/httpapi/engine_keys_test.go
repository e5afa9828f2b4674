package httpapi_test

import (
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/testclock"
)

// keyInfo is one entry of GET /v4/keys.
type keyInfo struct {
	ID, Algorithm, Status       string
	Bits                        int
	Created, Activates, Expires time.Time
}

func (ts *testServer) keys(tok string) []keyInfo {
	ts.t.Helper()
	r := ts.call("GET", "/v4/keys", tok, nil)
	wantStatus(ts.t, r, 200)
	var list struct {
		Total int
		Data  []keyInfo
	}
	r.json(ts.t, &list)
	if list.Total != len(list.Data) {
		ts.t.Fatalf("keys %s", r.body)
	}
	return list.Data
}

func TestEngineKeys(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	root := ts.root()
	ts.mkAccount(root, "keydev", pw("kd"), "developer")
	dev := ts.login("keydev", pw("kd"))

	keys := ts.keys(root)
	oldKID := activeKID(t, ts)
	if len(keys) != 1 || keys[0].ID != oldKID || keys[0].Algorithm != "RS512" || keys[0].Status != "active" ||
		keys[0].Bits != 2048 || time.Since(keys[0].Created).Abs() > time.Minute {
		t.Fatalf("keys %+v, kid %s", keys, oldKID)
	}
	if h, _ := tokenParts(t, root); h["kid"] != oldKID {
		t.Fatalf("token kid %v, key %s", h["kid"], oldKID)
	}
	wantDetail(t, ts.call("GET", "/v4/keys", dev, nil), 403, "403205", noPermission, "role has no permissions[key:get]")
	wantDetail(t, ts.call("POST", "/v4/keys/rotate", dev, nil), 403, "403205", noPermission, "role has no permissions[key:create]")
	wantErr(t, ts.call("POST", "/v4/keys/rotate", "", nil), 401, "401204", "No authorization header")

	r := ts.call("POST", "/v4/keys/rotate", root, map[string]bool{"immediate": true})
	wantStatus(t, r, 200)
	var rotated keyInfo
	r.json(t, &rotated)
	if rotated.ID == "" || rotated.ID == oldKID || rotated.Status != "active" || rotated.Algorithm != "RS512" {
		t.Fatalf("rotate answered %s", r.body)
	}

	// Tokens signed by the retired key keep working.
	wantStatus(t, ts.call("GET", "/v4/keys", root, nil), 200)
	wantValid(t, ts, dev)
	fresh := ts.root()
	if h, _ := tokenParts(t, fresh); h["kid"] != rotated.ID {
		t.Fatalf("new token kid %v, want %s", h["kid"], rotated.ID)
	}
	wantValid(t, ts, fresh)

	var kids []string
	for _, k := range jwks(t, ts) {
		kids = append(kids, k.Kid)
	}
	if !slices.Equal(kids, []string{rotated.ID, oldKID}) {
		t.Fatalf("JWKS kids %v, want new %s then old %s", kids, rotated.ID, oldKID)
	}
	keys = ts.keys(root)
	if len(keys) != 2 || keys[0].ID != rotated.ID || keys[0].Status != "active" || keys[1].ID != oldKID || keys[1].Status != "retired" {
		t.Fatalf("keys after rotation %+v", keys)
	}
	if d := time.Until(keys[1].Expires) - 24*time.Hour; d < -time.Minute || d > time.Minute {
		t.Fatalf("retired key expires %v, want about 24h from now", keys[1].Expires)
	}
}

// A rotation without options pre-publishes the new key: it is in the JWKS
// at once, whose cache lifetime is no longer than the pre-publication, and
// signs only from its activation time on.
func TestEngineKeysPrepublished(t *testing.T) {
	t.Parallel()
	clk := testclock.New(time.Now())
	const prepublish = 30 * time.Second
	ts := start(t, func(c *server.Config) { c.Now = clk.Now; c.KeyPrepublish = prepublish })
	root := ts.root()
	oldKID := activeKID(t, ts)
	if cc := ts.call("GET", "/.well-known/jwks.json", "", nil).header.Get("Cache-Control"); cc != "public, max-age=30" {
		t.Fatalf("JWKS Cache-Control %q, want max-age no longer than the pre-publication time", cc)
	}

	r := ts.call("POST", "/v4/keys/rotate", root, nil)
	wantStatus(t, r, 200)
	var next keyInfo
	r.json(t, &next)
	if next.ID == "" || next.ID == oldKID || next.Status != "pending" || !next.Activates.Equal(clk.Now().Add(prepublish)) {
		t.Fatalf("rotate answered %s, want a key pending until %v", r.body, clk.Now().Add(prepublish))
	}
	var again keyInfo
	ts.call("POST", "/v4/keys/rotate", root, map[string]bool{}).json(t, &again)
	if again.ID != next.ID {
		t.Fatalf("a second rotation while %s waits made %s", next.ID, again.ID)
	}
	wantCode(t, ts.call("POST", "/v4/keys/rotate", root, map[string]bool{"revoke": true}), 400, "400001")
	var kids []string
	for _, k := range jwks(t, ts) {
		kids = append(kids, k.Kid)
	}
	if !slices.Equal(kids, []string{next.ID, oldKID}) {
		t.Fatalf("JWKS kids %v, want the pending %s then the active %s", kids, next.ID, oldKID)
	}
	clk.Advance(prepublish - time.Second)
	before := ts.root()
	if h, _ := tokenParts(t, before); h["kid"] != oldKID {
		t.Fatalf("a second before activation the token kid is %v, want %s", h["kid"], oldKID)
	}
	clk.Advance(time.Second)
	after := ts.root()
	if h, _ := tokenParts(t, after); h["kid"] != next.ID {
		t.Fatalf("at activation the token kid is %v, want %s", h["kid"], next.ID)
	}
	keys := ts.keys(after)
	if len(keys) != 2 || keys[0].ID != next.ID || keys[0].Status != "active" || keys[1].Status != "retired" {
		t.Fatalf("keys after activation %+v", keys)
	}
	wantValid(t, ts, before)
	wantValid(t, ts, after)
}

// An emergency rotation with revoke switches at once and refuses every
// token signed before, including tokens already verified (and cached).
func TestEngineKeysEmergencyRevoke(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	root := ts.root()
	ts.mkAccount(root, "keyrev", pw("kr"), "developer")
	dev := ts.login("keyrev", pw("kr"))
	wantValid(t, ts, dev)
	pending := ts.call("POST", "/v4/keys/rotate", root, nil)
	wantStatus(t, pending, 200)

	r := ts.call("POST", "/v4/keys/rotate", root, map[string]bool{"immediate": true, "revoke": true})
	wantStatus(t, r, 200)
	var k keyInfo
	r.json(t, &k)
	if k.Status != "active" {
		t.Fatalf("emergency rotation answered %s", r.body)
	}
	for _, tok := range []string{root, dev} {
		wantCode(t, ts.call("GET", "/v4/self-perms", tok, nil), 401, "401201")
	}
	fresh := ts.root()
	if h, _ := tokenParts(t, fresh); h["kid"] != k.ID {
		t.Fatalf("token kid %v after the emergency rotation, want %s", h["kid"], k.ID)
	}
	wantValid(t, ts, fresh)
	if set := jwks(t, ts); len(set) != 1 || set[0].Kid != k.ID {
		t.Fatalf("JWKS after the emergency rotation %+v, want only %s", set, k.ID)
	}
}

// GET /.well-known/openid-configuration names the JWKS; with an issuer
// configured, engine tokens carry it as iss.
func TestOpenIDConfiguration(t *testing.T) {
	t.Parallel()
	type doc struct {
		Issuer  string   `json:"issuer"`
		JWKSURI string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
	}
	ts := start(t, nil)
	r := ts.call("GET", "/.well-known/openid-configuration", "", nil)
	wantStatus(t, r, 200)
	var d doc
	r.json(t, &d)
	if d.Issuer != ts.Base || d.JWKSURI != ts.Base+"/.well-known/jwks.json" || !slices.Equal(d.Algs, []string{"RS512"}) {
		t.Fatalf("discovery %s on %s", r.body, ts.Base)
	}
	if _, claims := tokenParts(t, ts.root()); claims["iss"] != nil {
		t.Fatalf("iss %v without an issuer configured", claims["iss"])
	}

	const iss = "https://gatehouse.example:8443"
	ts = start(t, func(c *server.Config) { c.Issuer = iss })
	ts.call("GET", "/.well-known/openid-configuration", "", nil).json(t, &d)
	if d.Issuer != iss || d.JWKSURI != iss+"/.well-known/jwks.json" {
		t.Fatalf("discovery with an issuer: %+v", d)
	}
	root := ts.root()
	if _, claims := tokenParts(t, root); claims["iss"] != iss {
		t.Fatalf("iss %v, want %s", claims["iss"], iss)
	}
	wantValid(t, ts, root)
}
