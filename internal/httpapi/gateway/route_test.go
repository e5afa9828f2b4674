package gateway

import (
	"net/url"
	"strings"
	"testing"
)

func TestParseUpstream(t *testing.T) {
	for _, tc := range []struct {
		in, prefix, upstream, kind, err string
	}{
		{in: "/v4/=http://127.0.0.1:30110", prefix: "/v4/", upstream: "http://127.0.0.1:30110", kind: KindEngine},
		{in: " /apiaccess/ccmessaging/ = https://aicc.example/base ", prefix: "/apiaccess/ccmessaging/", upstream: "https://aicc.example/base", kind: KindCCMessaging},
		{in: "/apiaccess/ccmessaging=http://x", prefix: "/apiaccess/ccmessaging", upstream: "http://x", kind: KindCCMessaging},
		{in: "/apiaccess/ccmessaging/chat/=http://x", prefix: "/apiaccess/ccmessaging/chat/", upstream: "http://x", kind: KindCCMessaging},
		{in: "/v4/", err: "want PREFIX=URL"},
		{in: "v4/=http://x", err: "prefix must start with /"},
		{in: "/v4/=ftp://x", err: "must be an http or https URL"},
		{in: "/v4/=http://", err: "must be an http or https URL"},
		{in: "/v4/=http://x/?a=b", err: "query or fragment"},
	} {
		r, err := ParseUpstream(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: want error %q, got %v", tc.in, tc.err, err)
			}
			continue
		}
		if err != nil || r.Prefix != tc.prefix || r.Upstream != tc.upstream || r.kind() != tc.kind {
			t.Errorf("%q: got %+v kind %s, %v", tc.in, r, r.kind(), err)
		}
	}
}

func TestRouteValidate(t *testing.T) {
	no := false
	for _, tc := range []struct {
		r   Route
		err string
	}{
		{Route{Prefix: "/x/", Upstream: "http://u", Resource: "service", Verb: "get"}, ""},
		{Route{Prefix: "/x/", Upstream: "http://u", Resource: "services"}, "unknown resource"},
		{Route{Prefix: "/x/", Upstream: "http://u", Resource: "service", Verb: "read"}, "unknown verb"},
		{Route{Prefix: "/x/", Upstream: "http://u", Verb: "get"}, "verb needs a resource"},
		{Route{Prefix: "/x/", Upstream: "http://u", Token: "basic"}, "token must be"},
		{Route{Prefix: "/x/", Upstream: "http://u", Token: KindCCMessaging, Resource: "service"}, "engine routes only"},
		{Route{Prefix: "/x/", Upstream: "http://u", Token: KindCCMessaging, StripAuthorization: &no}, "always strip"},
		{Route{Prefix: "/x/", Upstream: "http://u", Timeout: -1}, "negative"},
		{Route{Prefix: "/x/", Upstream: "http://u", StripPrefix: true}, ""},
		{Route{Prefix: "/x/", Upstream: "http://u", Rewrite: "/"}, ""},
		{Route{Prefix: "/x/", Upstream: "http://u", Rewrite: "/v2/api"}, ""},
		{Route{Prefix: "/x/", Upstream: "http://u", Rewrite: "/v2/"}, ""},
		{Route{Prefix: "/x/", Upstream: "http://u", Rewrite: "/v2", StripPrefix: true}, "exclude each other"},
		{Route{Prefix: "/x/", Upstream: "http://u", Rewrite: "v2"}, "canonical path"},
		{Route{Prefix: "/x/", Upstream: "http://u", Rewrite: "/v2/../admin"}, "canonical path"},
		{Route{Prefix: "/x/", Upstream: "http://u", Rewrite: "/v2/.."}, "canonical path"},
		{Route{Prefix: "/x/", Upstream: "http://u", Rewrite: "/v2//a"}, "canonical path"},
		{Route{Prefix: "/x/", Upstream: "http://u", Rewrite: "/v2/./a"}, "canonical path"},
		{Route{Prefix: "/x/", Upstream: "http://u", Rewrite: "/v2?a=b"}, "canonical path"},
		{Route{Prefix: "/x/", Upstream: "http://u", Rewrite: "/v2%2fa"}, "canonical path"},
		{Route{Prefix: "/x/", Upstream: "http://u", Rewrite: `/v2\a`}, "canonical path"},
		{Route{Prefix: "/x/", Upstream: "http://u", Rewrite: "/a b"}, "canonical path"},
	} {
		err := tc.r.validate()
		if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%+v: want %q, got %v", tc.r, tc.err, err)
		}
	}
}

func TestRouteMatches(t *testing.T) {
	slash := Route{Prefix: "/v4/"}
	bare := Route{Prefix: "/api"}
	for _, tc := range []struct {
		r    Route
		path string
		want bool
	}{
		{slash, "/v4/x", true},
		{slash, "/v4/", true},
		{slash, "/v4", false},
		{bare, "/api", true},
		{bare, "/api/x", true},
		{bare, "/apix", false},
	} {
		if got := tc.r.matches(tc.path); got != tc.want {
			t.Errorf("%s matches %s: %v", tc.r.Prefix, tc.path, got)
		}
	}
}

func TestNewRejectsDuplicatesAndOrdersPrefixes(t *testing.T) {
	if _, err := New(Config{Routes: []Route{{Prefix: "/a/", Upstream: "http://u"}, {Prefix: "/a/", Upstream: "http://v"}}}); err == nil {
		t.Fatal("a prefix given twice was accepted")
	}
	if _, err := New(Config{Routes: []Route{{Prefix: "/apiaccess/ccmessaging/", Upstream: "http://u"}}}); err == nil {
		t.Fatal("a ccmessaging route without session verification was accepted")
	}
	g, err := New(Config{Routes: []Route{{Prefix: "/a/", Upstream: "http://u"}, {Prefix: "/a/b/", Upstream: "http://v"}}})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := g.Upstream("/a/b/c"); p != "/a/b/" {
		t.Fatalf("longest prefix: got %q", p)
	}
	if p, _ := g.Upstream("/a/c"); p != "/a/" {
		t.Fatalf("got %q", p)
	}
	if _, h := g.Upstream("/c"); h != nil {
		t.Fatal("a path outside every prefix was routed")
	}
}

func TestMergeRoutes(t *testing.T) {
	base := []Route{{Prefix: "/a/", Upstream: "http://file-a"}, {Prefix: "/b/", Upstream: "http://file-b"}}
	got := MergeRoutes(base, []Route{{Prefix: "/b/", Upstream: "http://flag-b"}, {Prefix: "/c/", Upstream: "http://flag-c"}})
	want := []string{"/a/=http://file-a", "/b/=http://flag-b", "/c/=http://flag-c"}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i, r := range got {
		if r.Prefix+"="+r.Upstream != want[i] {
			t.Fatalf("got %+v", got)
		}
	}
	if base[1].Upstream != "http://file-b" {
		t.Fatal("MergeRoutes changed its input")
	}
}

// TestRewritePath covers strip-prefix and rewrite on paths the route
// takes: empty results, trailing slashes, encoded paths, the query.
func TestRewritePath(t *testing.T) {
	for _, tc := range []struct {
		route     Route
		uri, want string // request URI in, request URI forwarded
	}{
		{Route{Prefix: "/api/", StripPrefix: true}, "/api/x/y?a=b&c", "/x/y?a=b&c"},
		{Route{Prefix: "/api/", StripPrefix: true}, "/api/", "/"},
		{Route{Prefix: "/api/", StripPrefix: true}, "/api/?q=1", "/?q=1"},
		{Route{Prefix: "/api", StripPrefix: true}, "/api", "/"},
		{Route{Prefix: "/api", StripPrefix: true}, "/api/", "/"},
		{Route{Prefix: "/api", StripPrefix: true}, "/api/x/", "/x/"},
		{Route{Prefix: "/a/b/", StripPrefix: true}, "/a/b/c", "/c"},
		{Route{Prefix: "/", StripPrefix: true}, "/x", "/x"},
		{Route{Prefix: "/api/", Rewrite: "/v2"}, "/api/x", "/v2/x"},
		{Route{Prefix: "/api/", Rewrite: "/v2/"}, "/api/x", "/v2/x"},
		{Route{Prefix: "/api/", Rewrite: "/v2"}, "/api/", "/v2/"},
		{Route{Prefix: "/api", Rewrite: "/v2"}, "/api", "/v2"},
		{Route{Prefix: "/api", Rewrite: "/"}, "/api", "/"},
		{Route{Prefix: "/api", Rewrite: "/v2/x"}, "/api/y?z", "/v2/x/y?z"},
		{Route{Prefix: "/", Rewrite: "/base"}, "/x", "/base/x"},
		// The rest keeps its encoding, also when the prefix is spelt
		// encoded: segments are the same in both forms.
		{Route{Prefix: "/api/", StripPrefix: true}, "/api/a%20b/%41%3B", "/a%20b/%41%3B"},
		{Route{Prefix: "/api/", Rewrite: "/v2"}, "/%61pi/x%21y", "/v2/x%21y"},
		{Route{Prefix: "/api/", Rewrite: "/v2"}, "/api/%2e%2ex", "/v2/%2e%2ex"},
		{Route{Prefix: "/api/"}, "/api/x%21?q", "/api/x%21?q"},
	} {
		u, err := url.ParseRequestURI(tc.uri)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkPath(u); err != nil || !tc.route.matches(u.Path) {
			t.Fatalf("%q: the test needs a path the route takes (%v)", tc.uri, err)
		}
		tc.route.rewritePath(u)
		if got := u.RequestURI(); got != tc.want {
			t.Errorf("%+v %q: forwarded %q, want %q", tc.route, tc.uri, got, tc.want)
		}
		if err := checkPath(u); err != nil {
			t.Errorf("%q: forwarded %q fails the path checks", tc.uri, u.RequestURI())
		}
	}
}
