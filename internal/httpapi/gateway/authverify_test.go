package gateway_test

import (
	"bytes"
	"testing"

	"github.com/gatehouse/gatehouse/internal/httpapi/gateway"
)

// TestAuthVerifyEngine asks /auth/verify about engine-token requests the
// ways nginx, Traefik and Envoy do.
func TestAuthVerifyEngine(t *testing.T) {
	t.Parallel()
	g := start(t, nil)
	root := g.root()
	writer := g.user(root, "writer", perm([]string{"create"}, "service"))
	fooOnly := g.user(root, "fooOnly", labelled(get, "service", map[string]string{"serviceName": "foo"}))
	const inst = "/v4/default/registry/microservices/s1/instances"

	tests := []struct {
		name    string
		path    string // request path (below /auth/verify for Envoy)
		method  string
		token   string
		headers []string
		status  int
		code    string
	}{
		{"nginx allowed", gateway.VerifyPath, "GET", writer, []string{"X-Original-Method", "POST", "X-Original-URI", inst}, 200, ""},
		{"nginx wrong verb", gateway.VerifyPath, "GET", writer, []string{"X-Original-Method", "GET", "X-Original-URI", inst}, 403, "403205"},
		{"nginx no method is GET", gateway.VerifyPath, "GET", writer, []string{"X-Original-URI", inst}, 403, "403205"},
		{"traefik allowed", gateway.VerifyPath, "GET", writer, []string{"X-Forwarded-Method", "POST", "X-Forwarded-Uri", inst + "?x=1"}, 200, ""},
		{"traefik denied", gateway.VerifyPath, "GET", writer, []string{"X-Forwarded-Method", "DELETE", "X-Forwarded-Uri", inst}, 403, "403205"},
		{"envoy allowed", gateway.VerifyPath + inst + "?x=1", "POST", writer, nil, 200, ""},
		{"envoy denied", gateway.VerifyPath + inst, "PUT", writer, nil, 403, "403205"},
		{"labels match", gateway.VerifyPath, "GET", fooOnly, []string{"X-Original-URI", "/v4/default/registry/existence?type=microservice&serviceName=foo"}, 200, ""},
		{"labels differ", gateway.VerifyPath, "GET", fooOnly, []string{"X-Original-URI", "/v4/default/registry/existence?type=microservice&serviceName=bar"}, 403, "403205"},
		{"unmapped, admin", gateway.VerifyPath, "GET", root, []string{"X-Original-URI", "/somewhere/else"}, 200, ""},
		{"unmapped, not admin", gateway.VerifyPath, "GET", writer, []string{"X-Original-URI", "/somewhere/else"}, 403, "403205"},
		{"public", gateway.VerifyPath, "GET", "", []string{"X-Original-URI", "/v4/default/registry/health"}, 200, ""},
		{"no token", gateway.VerifyPath, "GET", "", []string{"X-Original-URI", inst}, 401, "401204"},
		{"bad token", gateway.VerifyPath, "GET", "x.y.z", []string{"X-Original-URI", inst}, 401, "401201"},
		{"no original URI", gateway.VerifyPath, "GET", writer, nil, 400, "400001"},
		{"absolute URI", gateway.VerifyPath, "GET", writer, []string{"X-Original-URI", "http://evil/v4/x"}, 400, "400001"},
		{"conflicting URIs", gateway.VerifyPath, "GET", writer, []string{"X-Original-URI", "/v4/default/registry/health", "X-Forwarded-Uri", inst}, 400, "400001"},
		{"conflicting methods", gateway.VerifyPath, "GET", writer, []string{"X-Original-Method", "GET", "X-Forwarded-Method", "POST", "X-Original-URI", inst}, 400, "400001"},
		{"agreeing sources", gateway.VerifyPath, "GET", writer, []string{"X-Original-Method", "POST", "X-Forwarded-Method", "post", "X-Original-URI", inst, "X-Forwarded-Uri", inst}, 200, ""},
		{"envoy with a conflicting header", gateway.VerifyPath + inst, "POST", writer, []string{"X-Original-URI", "/v4/default/registry/health"}, 400, "400001"},
		{"dot segments", gateway.VerifyPath, "GET", writer, []string{"X-Original-URI", "/v4/default/registry/microservices/s1/instances/../../../admin/dump"}, 400, "400001"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := g.do(tc.method, tc.path, tc.token, nil, tc.headers...)
			if tc.status != 200 {
				wantErr(t, r, tc.status, tc.code)
				return
			}
			if r.status != 200 || len(r.body) != 0 || r.header.Get("Cache-Control") != "no-store" {
				t.Fatalf("got %d %q %v", r.status, r.body, r.header)
			}
			if tc.token == "" && r.header.Get(gateway.HeaderAccount) != "" {
				t.Fatal("a public path answered an identity")
			}
			if tc.token != "" && r.header.Get(gateway.HeaderAccount) == "" {
				t.Fatal("no identity headers")
			}
		})
	}

	r := g.do("GET", gateway.VerifyPath, writer, nil, "X-Original-Method", "POST", "X-Original-URI", inst)
	if r.header.Get(gateway.HeaderAccount) != "writer" || r.header.Get(gateway.HeaderRoles) != "writer" {
		t.Fatalf("identity %v", r.header)
	}

	// The denials are the native endpoints' bodies, byte for byte.
	native := g.do("GET", "/v4/accounts", writer, nil)
	viaVerify := g.do("GET", gateway.VerifyPath, writer, nil, "X-Original-URI", "/v4/accounts")
	if native.status != 403 || viaVerify.status != 403 || !bytes.Equal(native.body, viaVerify.body) {
		t.Fatalf("native %d %s, verify %d %s", native.status, native.body, viaVerify.status, viaVerify.body)
	}
	native = g.do("GET", "/v4/accounts", "", nil)
	viaVerify = g.do("GET", gateway.VerifyPath, "", nil, "X-Original-URI", "/v4/accounts")
	if native.status != 401 || !bytes.Equal(native.body, viaVerify.body) {
		t.Fatalf("native %d %s, verify %d %s", native.status, native.body, viaVerify.status, viaVerify.body)
	}
}

// TestAuthVerifyCCMessaging asks /auth/verify about ccmessaging requests.
func TestAuthVerifyCCMessaging(t *testing.T) {
	t.Parallel()
	g := start(t, nil)
	s := g.openSession(g.root(), "erin")
	const path = ccmPrefix + "chat/messages"

	r := g.do("GET", gateway.VerifyPath, "", nil, append(s.headers(), "X-Original-Method", "POST", "X-Original-URI", path)...)
	if r.status != 200 || r.header.Get("ccmessaging-token") != "" {
		t.Fatalf("got %d %s %v", r.status, r.body, r.header)
	}
	for h, want := range map[string]string{
		gateway.HeaderUserID: "erin", gateway.HeaderChannelID: s.channelID,
		gateway.HeaderLocale: "en_US", gateway.HeaderAppKey: s.appKey,
	} {
		if got := r.header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}

	// Envoy's form, and a denial with the native endpoint's body.
	if r := g.do("POST", gateway.VerifyPath+path, "", nil, s.headers()...); r.status != 200 {
		t.Fatalf("envoy form: %d %s", r.status, r.body)
	}
	noToken := []string{"x-app-key", s.appKey, "Authorization", "Bearer " + s.accessToken}
	native := g.do("GET", ccmPrefix+"session", "", nil, noToken...)
	viaVerify := g.do("GET", gateway.VerifyPath, "", nil, append(noToken, "X-Original-URI", path)...)
	wantResult(t, viaVerify, 401)
	if !bytes.Equal(native.body, viaVerify.body) {
		t.Fatalf("native %s, verify %s", native.body, viaVerify.body)
	}
}
