package gateway_test

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/httpapi/gateway"
)

// TestGatewayRewrite covers strip-prefix and rewrite end to end: what the
// upstream receives (path, its encoding, the query), that the decision is
// made on the original path, and that dot segments and encoded separators
// are refused before anything is forwarded.
func TestGatewayRewrite(t *testing.T) {
	t.Parallel()
	up := newEcho(t)
	g := start(t, nil,
		gateway.Route{Prefix: "/reports/", Upstream: up.URL + "/base", StripPrefix: true, Resource: "ops", Verb: "get"},
		gateway.Route{Prefix: "/bare", Upstream: up.URL, StripPrefix: true, Resource: "ops", Verb: "get"},
		gateway.Route{Prefix: "/v4/default/registry", Upstream: up.URL, Rewrite: "/sc/registry"},
	)
	root := g.root()
	opsReader := g.user(root, "opsReader", perm(get, "ops"))
	reader := g.user(root, "reader", perm(get, "service"))

	for _, tc := range []struct {
		token, uri, want string
	}{
		{opsReader, "/reports/daily?x=1&y=a%20b", "/base/daily?x=1&y=a%20b"},
		{opsReader, "/reports/", "/base/"},
		{opsReader, "/reports/a%20b/%41%3B", "/base/a%20b/%41%3B"},
		{opsReader, "/bare", "/"},
		{opsReader, "/bare?q", "/?q"},
		{opsReader, "/bare/x/", "/x/"},
		// Service Center's mapping of the original path decides: reader
		// may read services, and the upstream sees the rewritten path.
		{reader, "/v4/default/registry/microservices?appId=a", "/sc/registry/microservices?appId=a"},
		{root, "/v4/default/registry", "/sc/registry"},
	} {
		r := g.do("GET", tc.uri, tc.token, nil)
		if r.status != 200 {
			t.Fatalf("GET %s: %d %s", tc.uri, r.status, r.body)
		}
		if got := up.last(t).URI; got != tc.want {
			t.Errorf("GET %s reached the upstream as %q, want %q", tc.uri, got, tc.want)
		}
	}

	// The rewritten path is not what is decided on: /sc/registry/... is
	// unmapped (admin only), but the original path is a service read.
	wantErr(t, g.do("DELETE", "/v4/default/registry/microservices/s1", reader, nil), 403, "403205")
	wantErr(t, g.do("GET", "/reports/daily", reader, nil), 403, "403205")

	// Nothing can climb out of the prefix or the replacement.
	before := up.count()
	for _, uri := range []string{
		"/reports/../v4/accounts",
		"/reports/%2e%2e/%2e%2e/etc",
		"/reports/x/../../admin",
		"/reports/a%2Fb",
		"/reports/a%5Cb",
		"/reports//x",
		"/bare/..",
		"/v4/default/registry/./microservices",
	} {
		// Sent as written: a client library would clean some of these.
		// The server's mux may answer a redirect to the cleaned path
		// (a new request, decided anew); the gateway answers 400.
		r, _ := g.Raw("GET "+uri+" HTTP/1.1\r\nHost: gatehouse\r\nConnection: close\r\nAuthorization: Bearer "+root, nil)
		if r.Status != 400 && r.Status != 307 {
			t.Errorf("GET %s: %d %s", uri, r.Status, r.Body)
		}
	}
	if n := up.count(); n != before {
		t.Fatalf("%d refused requests reached the upstream", n-before)
	}
}
