package gateway_test

import (
	"bytes"
	"testing"

	"github.com/gatehouse/gatehouse/internal/httpapi/gateway"
)

// TestGatewayAndVerifySameRules runs one table of requests through the
// gateway and through /auth/verify (nginx's headers and Envoy's path
// form): both allow the same requests and refuse the others with the
// same status and body. The routes' rules count in both: token kind,
// resource and verb, strip-prefix (decided on the original path).
func TestGatewayAndVerifySameRules(t *testing.T) {
	t.Parallel()
	up := newEcho(t)
	g := start(t, nil,
		gateway.Route{Prefix: "/v4/", Upstream: up.URL},
		gateway.Route{Prefix: "/reports/", Upstream: up.URL, Resource: "ops", Verb: "get", StripPrefix: true},
		gateway.Route{Prefix: "/v4/default/registry/special", Upstream: up.URL, Resource: "config"},
		gateway.Route{Prefix: "/chat/", Upstream: up.URL, Token: gateway.KindCCMessaging},
		gateway.Route{Prefix: ccmPrefix + "engine/", Upstream: up.URL, Token: gateway.KindEngine},
		gateway.Route{Prefix: ccmPrefix, Upstream: up.URL},
	)
	root := g.root()
	opsReader := g.user(root, "opsReader", perm(get, "ops"))
	tagger := g.user(root, "tagger", perm(create, "config"))
	reader := g.user(root, "reader", perm(get, "service", "instance"))
	s := g.openSession(root, "frank")
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	const inst = "/v4/default/registry/microservices/s1/instances"

	tests := []struct {
		name, method, uri string
		headers           []string
		status            int
	}{
		{"route resource, verb of the route", "POST", "/reports/daily?x=1", bearer(opsReader), 200},
		{"route resource, other role", "GET", "/reports/daily", bearer(tagger), 403},
		{"route resource, no token", "GET", "/reports/daily", nil, 401},
		{"route resource, bad token", "GET", "/reports/daily", bearer("x.y.z"), 401},
		{"longest prefix, method's verb", "POST", "/v4/default/registry/special/x", bearer(tagger), 200},
		{"longest prefix, wrong verb", "GET", "/v4/default/registry/special/x", bearer(tagger), 403},
		{"mapping", "GET", inst, bearer(reader), 200},
		{"mapping, wrong verb", "DELETE", inst + "/i1", bearer(reader), 403},
		{"mapping, unmapped needs admin", "GET", "/v4/default/somewhere", bearer(reader), 403},
		{"mapping, unmapped, admin", "GET", "/v4/default/somewhere", bearer(root), 200},
		{"ccmessaging route, session", "POST", "/chat/messages", s.headers(), 200},
		{"ccmessaging route, engine token", "GET", "/chat/messages", bearer(root), 401},
		{"engine route under ccmessaging", "GET", ccmPrefix + "engine/x", bearer(root), 200},
		{"engine route under ccmessaging, session", "GET", ccmPrefix + "engine/x", s.headers(), 401},
		{"engine route under ccmessaging, no admin", "GET", ccmPrefix + "engine/x", bearer(opsReader), 403},
		{"ccmessaging default", "GET", ccmPrefix + "chat/x", s.headers(), 200},
		{"ccmessaging default, engine token", "GET", ccmPrefix + "chat/x", bearer(root), 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := up.count()
			gw := g.do(tc.method, tc.uri, "", nil, tc.headers...)
			if (gw.status == 200) != (up.count() > before) || gw.status != tc.status {
				t.Fatalf("gateway: %d %s, want %d", gw.status, gw.body, tc.status)
			}
			nginx := g.do("GET", gateway.VerifyPath, "", nil, append([]string{"X-Original-Method", tc.method, "X-Original-URI", tc.uri}, tc.headers...)...)
			envoy := g.do(tc.method, gateway.VerifyPath+tc.uri, "", nil, tc.headers...)
			for name, v := range map[string]reply{"nginx": nginx, "envoy": envoy} {
				if v.status != gw.status || (v.status != 200 && !bytes.Equal(v.body, gw.body)) {
					t.Errorf("%s: /auth/verify %d %s, gateway %d %s", name, v.status, v.body, gw.status, gw.body)
				}
			}
		})
	}
}
