package gateway

import (
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
