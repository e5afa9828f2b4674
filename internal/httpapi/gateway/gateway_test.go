package gateway_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpapi/gateway"
)

var (
	get, create = []string{"get"}, []string{"create"}
	anyVerb     = []string{"*"}
)

// TestGatewayRBAC sends requests of every Service Center resource, as
// accounts of different roles, through a /v4/ route.
func TestGatewayRBAC(t *testing.T) {
	t.Parallel()
	up := newEcho(t)
	g := start(t, nil, gateway.Route{Prefix: "/v4/", Upstream: up.URL}, gateway.Route{Prefix: "/v1/", Upstream: up.URL})
	root := g.root()
	tokens := map[string]string{
		"root":      root,
		"developer": "",
		"svcReader": g.user(root, "svcReader", perm(get, "service")),
		"svcWriter": g.user(root, "svcWriter",
			perm([]string{"create", "update"}, "service"), perm(get, "service/schema")),
		"govOps":  g.user(root, "govOps", perm(get, "governance", "ops")),
		"fooOnly": g.user(root, "fooOnly", labelled([]string{"get", "create"}, "service", map[string]string{"serviceName": "foo"})),
	}
	g.mustOK("POST", "/v4/accounts", root, map[string]any{"name": "dev", "password": "Passw0rd!dev", "roles": []string{"developer"}})
	tokens["developer"] = g.login("dev", "Passw0rd!dev")

	const ms = "/v4/default/registry/microservices"
	tests := []struct {
		method, path string
		body         any
		allowed      []string // accounts allowed; every other one gets 403 with deny
		deny         string   // the detail's permission, resource:verb
	}{
		{"GET", ms, nil, []string{"root", "developer", "svcReader", "fooOnly"}, "service:get"},
		{"GET", ms + "/s1", nil, []string{"root", "developer", "svcReader", "fooOnly"}, "service:get"},
		{"PUT", ms + "/s1/properties", `{}`, []string{"root", "developer", "svcWriter"}, "service:update"},
		{"DELETE", ms + "/s1", nil, []string{"root", "developer"}, "service:delete"},
		{"POST", ms, `{"service":{"serviceName":"foo","appId":"a"}}`, []string{"root", "developer", "svcWriter", "fooOnly"}, "service:create"},
		{"POST", ms, `{"service":{"serviceName":"bar","appId":"a"}}`, []string{"root", "developer", "svcWriter"}, "service:create"},
		{"GET", "/v4/default/registry/existence?type=microservice&appId=a&serviceName=foo&env=", nil, []string{"root", "developer", "svcReader", "fooOnly"}, "service:get"},
		{"GET", "/v4/default/registry/existence?type=microservice&appId=a&serviceName=bar&env=", nil, []string{"root", "developer", "svcReader"}, "service:get"},
		// Service Center's mapping: instances, dependencies, tags and the
		// legacy /govern API are "service", schemas "service/schema".
		{"POST", ms + "/s1/instances", `{}`, []string{"root", "developer", "svcWriter", "fooOnly"}, "service:create"},
		{"PUT", ms + "/s1/instances/i1/status?value=UP", nil, []string{"root", "developer", "svcWriter"}, "service:update"},
		{"PUT", ms + "/s1/instances/i1/heartbeat", nil, []string{"root", "developer", "svcWriter"}, "service:update"},
		{"GET", "/v4/default/registry/instances?appId=a&serviceName=foo", nil, []string{"root", "developer", "svcReader", "fooOnly"}, "service:get"},
		{"GET", "/v4/default/registry/instances?appId=a&serviceName=bar", nil, []string{"root", "developer", "svcReader"}, "service:get"},
		{"POST", "/v4/default/registry/instances/action?type=query", `{}`, []string{"root", "developer", "svcReader", "fooOnly"}, "service:get"},
		{"GET", ms + "/s1/schemas", nil, []string{"root", "developer", "svcWriter"}, "service/schema:get"},
		{"PUT", ms + "/s1/schemas/sc1", `{}`, []string{"root", "developer"}, "service/schema:update"},
		{"GET", ms + "/s1/consumers", nil, []string{"root", "developer", "svcReader", "fooOnly"}, "service:get"},
		{"GET", ms + "/s1/providers", nil, []string{"root", "developer", "svcReader", "fooOnly"}, "service:get"},
		{"POST", ms + "/s1/tags", `{}`, []string{"root", "developer", "svcWriter", "fooOnly"}, "service:create"},
		{"GET", "/v4/default/govern/microservices", nil, []string{"root", "developer", "svcReader", "fooOnly"}, "service:get"},
		{"GET", "/v1/default/gov/match-group", nil, []string{"root", "developer", "govOps"}, "governance:get"},
		{"POST", "/v1/default/gov/match-group", `{}`, []string{"root", "developer"}, "governance:create"},
		{"GET", "/v4/default/admin/dump", nil, []string{"root", "developer", "govOps"}, "ops:get"},
		{"POST", "/v4/default/admin/alarms/clear", `{}`, []string{"root", "developer"}, "ops:create"},
		{"DELETE", ms + "/s1/rules/r1", nil, []string{"root"}, ""},
		{"GET", "/v4/default/registry/unknown-api", nil, []string{"root"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			path, _, _ := strings.Cut(tc.path, "?")
			for who, tok := range tokens {
				before := up.count()
				r := send(t, tc.method, g.base+tc.path, tok, tc.body)
				if contains(tc.allowed, who) {
					proxied(t, r, path)
					continue
				}
				e := wantErr(t, r, 403, "403205")
				if tc.deny != "" && e.Detail != "role has no permissions["+tc.deny+"]" {
					t.Errorf("%s: detail %q, want %s", who, e.Detail, tc.deny)
				}
				if up.count() != before {
					t.Errorf("%s: a denied request reached the upstream", who)
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestGatewayAuthentication covers requests without a valid token and
// Service Center's public APIs.
func TestGatewayAuthentication(t *testing.T) {
	t.Parallel()
	up := newEcho(t)
	g := start(t, nil, gateway.Route{Prefix: "/v4/", Upstream: up.URL})
	const path = "/v4/default/registry/microservices"
	wantErr(t, g.do("GET", path, "", nil), 401, "401204")
	e := wantErr(t, g.do("GET", path, "", nil, "Authorization", "Basic abc"), 401, "401201")
	if e.Detail != "invalid auth header" {
		t.Errorf("detail %q", e.Detail)
	}
	wantErr(t, g.do("GET", path, "not.a.token", nil), 401, "401201")
	if up.count() != 0 {
		t.Fatal("an unauthenticated request reached the upstream")
	}

	for _, p := range []string{"/v4/default/registry/health", "/v4/default/registry/version"} {
		proxied(t, g.do("GET", p, "", nil), p)
	}

	// A logged-out token stops working at the gateway at once.
	tok := g.root()
	proxied(t, g.do("GET", path, tok, nil), path)
	g.mustOK("DELETE", "/v4/token", tok, nil)
	if e := wantErr(t, g.do("GET", path, tok, nil), 401, "401201"); e.Detail != "token revoked" {
		t.Errorf("detail %q", e.Detail)
	}
}

// TestGatewayOwnRoutesFirst checks that Gatehouse's own endpoints are not
// proxied, and that everything else under the prefix is.
func TestGatewayOwnRoutesFirst(t *testing.T) {
	t.Parallel()
	up := newEcho(t)
	g := start(t, nil, gateway.Route{Prefix: "/v4/", Upstream: up.URL})
	root := g.root()
	r := g.mustOK("GET", "/v4/accounts", root, nil)
	if !strings.Contains(string(r.body), `"total"`) {
		t.Fatalf("GET /v4/accounts: %s", r.body)
	}
	wantErr(t, g.do("PATCH", "/v4/accounts", root, nil), 405, "405001")
	g.mustOK("GET", "/.well-known/jwks.json", "", nil)
	if up.count() != 0 {
		t.Fatalf("the upstream received %d of Gatehouse's own requests", up.count())
	}
	wantErr(t, g.do("GET", "/other", root, nil), 404, "404001")
	proxied(t, g.do("GET", "/v4/default/registry/microservices", root, nil), "/v4/default/registry/microservices")
}

// TestGatewayRejectsAmbiguousPaths checks that paths an upstream could
// route differently from the gateway's decision are refused.
func TestGatewayRejectsAmbiguousPaths(t *testing.T) {
	t.Parallel()
	up := newEcho(t)
	g := start(t, nil, gateway.Route{Prefix: "/v4/", Upstream: up.URL})
	dev := g.user(g.root(), "lister", perm(get, "service"))
	for _, p := range []string{
		"/v4/default/registry/microservices/../../admin/dump",
		"/v4/default/registry//microservices",
		"/v4/default/registry/microservices%2Fx",
	} {
		wantErr(t, send(t, "GET", g.base+p, dev, nil), 400, "400001")
	}
	if up.count() != 0 {
		t.Fatal("an ambiguous path reached the upstream")
	}
}

// TestGatewayLabelBody checks that the body read for labels of a service
// creation reaches the upstream intact, and that an oversize one is
// refused.
func TestGatewayLabelBody(t *testing.T) {
	t.Parallel()
	up := newEcho(t)
	g := start(t, nil, gateway.Route{Prefix: "/v4/", Upstream: up.URL})
	root := g.root()
	const path = "/v4/default/registry/microservices"
	body := `{"service":{"serviceName":"foo","appId":"a","schemas":["` + strings.Repeat("s", 100_000) + `"]}}`
	proxied(t, g.do("POST", path, root, body), path)
	if s := up.last(t); string(s.Body) != body || s.Header.Get("Content-Length") != strconv.Itoa(len(body)) {
		t.Fatalf("the upstream got %d bytes (Content-Length %s) of %d", len(s.Body), s.Header.Get("Content-Length"), len(body))
	}
	before := up.count()
	wantErr(t, g.do("POST", path, root, strings.Repeat(" ", 1<<20+1)), 413, "413001")
	if up.count() != before {
		t.Fatal("an oversize body reached the upstream")
	}
}

// TestGatewayLabelBodyNeedsToken checks that the body of a service
// creation is not read before the token is verified: a request without a
// token is refused at once, while its body has not even been sent.
func TestGatewayLabelBodyNeedsToken(t *testing.T) {
	t.Parallel()
	up := newEcho(t)
	g := start(t, nil, gateway.Route{Prefix: "/v4/", Upstream: up.URL})
	for _, token := range []string{"", "not.a.token"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		t.Cleanup(cancel)
		body, unsent := io.Pipe()
		context.AfterFunc(ctx, func() { unsent.Close() })
		req, err := http.NewRequestWithContext(ctx, "POST", g.base+"/v4/default/registry/microservices", body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = 1 << 20
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("token %q: no answer while the body is pending: %v", token, err)
		}
		if resp.StatusCode != 401 {
			t.Fatalf("token %q: status %d, want 401", token, resp.StatusCode)
		}
		resp.Body.Close()
	}
	if up.count() != 0 {
		t.Fatal("an unauthenticated request reached the upstream")
	}
}

// TestGatewayRouteOverrides covers a route's own resource and verb, and
// strip-authorization.
func TestGatewayRouteOverrides(t *testing.T) {
	t.Parallel()
	up := newEcho(t)
	strip := true
	g := start(t, nil,
		gateway.Route{Prefix: "/v4/", Upstream: up.URL},
		gateway.Route{Prefix: "/reports/", Upstream: up.URL, Resource: "ops", Verb: "get", StripAuthorization: &strip},
		gateway.Route{Prefix: "/v4/default/registry/special", Upstream: up.URL, Resource: "config"},
	)
	root := g.root()
	opsReader := g.user(root, "opsReader", perm(get, "ops"))
	tagger := g.user(root, "tagger", perm(create, "config"))

	proxied(t, g.do("POST", "/reports/daily", opsReader, `{}`), "/reports/daily")
	if h := up.last(t).Header; h.Get("Authorization") != "" || h.Get(gateway.HeaderAccount) != "opsReader" {
		t.Fatalf("strip-authorization route forwarded Authorization %q, account %q", h.Get("Authorization"), h.Get(gateway.HeaderAccount))
	}
	wantErr(t, g.do("GET", "/reports/daily", tagger, nil), 403, "403205")

	// The longest prefix wins; the route's resource replaces the mapping.
	proxied(t, g.do("POST", "/v4/default/registry/special/x", tagger, `{}`), "/v4/default/registry/special/x")
	if h := up.last(t).Header; h.Get("Authorization") != "Bearer "+tagger {
		t.Fatal("a /v4 route did not keep Authorization by default")
	}
	wantErr(t, g.do("GET", "/v4/default/registry/special/x", tagger, nil), 403, "403205")
	wantErr(t, g.do("GET", "/v4/default/registry/microservices", tagger, nil), 403, "403205")
}
