package gateway

import (
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/apierror"
)

// fuzzRoutes are the routes FuzzRoute matches paths against.
var fuzzRoutes = []Route{
	{Prefix: "/v4/", Upstream: "http://127.0.0.1:1"},
	{Prefix: "/v4/default/registry", Upstream: "http://127.0.0.1:2/base"},
	{Prefix: "/v4/default/registry/microservices/", Upstream: "http://127.0.0.1:3"},
	{Prefix: "/apiaccess/ccmessaging/chat", Upstream: "https://127.0.0.1:4", Token: KindEngine},
}

// FuzzRoute feeds --upstream values and request paths to the route
// parser and matcher. A parsed route prints back to a value that parses
// to the same route; a route takes a path only at a segment boundary of
// its prefix; the gateway picks the longest prefix that takes a path; and
// strip-prefix and rewrite forward a canonical path (checkRewrite).
func FuzzRoute(f *testing.F) {
	g, err := New(Config{Routes: fuzzRoutes})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("/v4/=http://127.0.0.1:30100", "/v4/token")
	f.Add(" /api = https://svc.example/base ", "/api")
	f.Add("/api=https://svc.example", "/apix")
	f.Add("/apiaccess/ccmessaging/=https://aicc.example", "/apiaccess/ccmessaging/chat/x")
	f.Add("/x=ftp://svc.example", "/v4/default/registry/microservices")
	f.Add("/x=http://svc.example?q=1", "/v4/default/registryx")
	f.Add("x=http://svc.example", "")
	f.Add("/api=http://svc.example", "/v4/default/registry/microservices/a%20b/%41?x=1")
	f.Add("/api=http://svc.example", "/v4/default/registry")
	f.Add("/api=http://svc.example", "/v4/default/registry/")
	f.Add("/api=http://svc.example", "/v4/default/registry/%2e%2e/accounts")
	f.Add("/api=http://svc.example", "/apiaccess/ccmessaging/chat?q")
	f.Fuzz(func(t *testing.T, upstream, path string) {
		if r, err := ParseUpstream(upstream); err == nil {
			again, err := ParseUpstream(r.Prefix + "=" + r.Upstream)
			if err != nil || !reflect.DeepEqual(again, r) {
				t.Fatalf("route %+v printed back parses to %+v, %v", r, again, err)
			}
			checkMatch(t, r, path)
		}
		for _, r := range fuzzRoutes {
			checkMatch(t, r, path)
		}
		prefix, h := g.Upstream(path)
		var want string
		for _, r := range fuzzRoutes {
			if r.matches(path) && len(r.Prefix) > len(want) {
				want = r.Prefix
			}
		}
		if prefix != want || (h == nil) != (want == "") {
			t.Fatalf("path %q went to route %q, want %q", path, prefix, want)
		}
		checkRewrite(t, path)
	})
}

// fuzzRewrites are the replacements checkRewrite applies: strip-prefix,
// and rewrites to the root, a path and a path with a trailing slash.
var fuzzRewrites = []Route{{StripPrefix: true}, {Rewrite: "/"}, {Rewrite: "/v2/api"}, {Rewrite: "/v2/"}}

// checkRewrite parses uri as a request URI and, when it passes the path
// checks, applies every replacement of fuzzRewrites with the prefix of
// every route of fuzzRoutes that takes it. The forwarded path passes the
// path checks too (no dot segment, repeated or encoded separator can
// appear), starts with the replacement and ends with the original path's
// rest after the prefix's segments, its escaped form means the same path,
// and the query is untouched.
func checkRewrite(t *testing.T, uri string) {
	t.Helper()
	in, err := url.ParseRequestURI(uri)
	if err != nil || checkPath(in) != nil {
		return
	}
	for _, r := range fuzzRoutes {
		if !r.matches(in.Path) {
			continue
		}
		for _, rw := range fuzzRewrites {
			rw.Prefix = r.Prefix
			out := *in
			rw.rewritePath(&out)
			repl := strings.TrimSuffix(rw.Rewrite, "/")
			want := repl + strings.TrimPrefix(in.Path, strings.TrimSuffix(r.Prefix, "/"))
			if want == "" {
				want = "/"
			}
			if out.Path != want {
				t.Fatalf("%+v forwards %q as %q, want %q", rw, uri, out.Path, want)
			}
			if err := checkPath(&out); err != nil {
				t.Fatalf("%+v forwards %q as %q, which fails the path checks: %v", rw, uri, out.RequestURI(), err)
			}
			if p, err := url.PathUnescape(out.EscapedPath()); err != nil || p != out.Path || out.RawQuery != in.RawQuery {
				t.Fatalf("%+v forwards %q as %q (path %q)", rw, uri, out.RequestURI(), out.Path)
			}
		}
	}
}

// checkMatch checks that r takes path exactly when path is r's prefix
// or lies below it, at a segment boundary.
func checkMatch(t *testing.T, r Route, path string) {
	t.Helper()
	base := strings.TrimSuffix(r.Prefix, "/")
	want := strings.HasPrefix(path, base+"/") || (path == r.Prefix && !strings.HasSuffix(r.Prefix, "/"))
	if strings.HasSuffix(r.Prefix, "/") {
		want = strings.HasPrefix(path, r.Prefix)
	}
	if got := r.matches(path); got != want {
		t.Fatalf("route %q takes path %q: %v, want %v", r.Prefix, path, got, want)
	}
}

// FuzzMapRequest feeds methods, request URIs and bodies to the path
// checks and Service Center's path → resource mapping. A URI that passes
// the checks maps the same after printing and parsing it again; only the
// allow-listed paths are public; labels come only from where the rule
// says; and refusals are 400s that do not echo the URI.
func FuzzMapRequest(f *testing.F) {
	svc := `{"service":{"environment":"prod","appId":"shop","serviceName":"cart"}}`
	f.Add("POST", "/v4/default/registry/microservices", []byte(svc))
	f.Add("GET", "/v4/default/registry/existence?type=microservice&env=prod&appId=shop&serviceName=cart", []byte(nil))
	f.Add("GET", "/v4/default/registry/instances?serviceId=1", []byte(nil))
	f.Add("DELETE", "/v4/accounts/dave", []byte(nil))
	f.Add("POST", "/v4/token", []byte(`{}`))
	f.Add("GET", "/v4/default/registry/../../accounts", []byte(nil))
	f.Add("GET", "/v4/accounts%2Fdave", []byte(nil))
	f.Add("PUT", "/v4//accounts/dave/password", []byte(nil))
	f.Add("GET", "/v4/default/registry/version/", []byte(nil))
	f.Fuzz(func(t *testing.T, method, uri string, body []byte) {
		u, err := url.ParseRequestURI(uri)
		if err != nil {
			return
		}
		if err := checkPath(u); err != nil {
			wantBadRequest(t, err, uri)
			return
		}
		read := func() ([]byte, error) { return body, nil }
		tg, err := mapRequest(method, u, read)
		if err != nil {
			t.Fatalf("mapRequest failed with a body at hand: %v", err)
		}
		again, err := url.ParseRequestURI(u.RequestURI())
		if err != nil {
			t.Fatalf("%q printed as %q does not parse: %v", uri, u.RequestURI(), err)
		}
		if err := checkPath(again); err != nil {
			t.Fatalf("%q printed as %q fails the path checks: %v", uri, u.RequestURI(), err)
		}
		if tg2, _ := mapRequest(method, again, read); !reflect.DeepEqual(tg, tg2) {
			t.Fatalf("%q maps to %+v, printed as %q to %+v", uri, tg, u.RequestURI(), tg2)
		}
		if tg.access == accessPublic && !publicPath(segments(u.Path)) {
			t.Fatalf("%q is public", uri)
		}
		if tg.labels != nil && len(tg.labels) != 3 {
			t.Fatalf("labels %v", tg.labels)
		}
		if method != http.MethodPost && tg.labels != nil && u.Query().Has("serviceId") {
			t.Fatalf("%q names labels %v although it addresses a service by id", uri, tg.labels)
		}
	})
}

// publicPath reports whether segs is one of Service Center's
// authentication allow list: token issue, version and health.
func publicPath(segs []string) bool {
	switch len(segs) {
	case 1:
		return segs[0] == "version" || segs[0] == "health"
	case 2:
		return segs[0] == "v4" && segs[1] == "token"
	case 4:
		return segs[0] == "v4" && segs[1] != "" && segs[2] == "registry" && (segs[3] == "version" || segs[3] == "health")
	}
	return false
}

// wantBadRequest fails t unless err is a 400 API error that does not
// echo input.
func wantBadRequest(t *testing.T, err error, input string) {
	t.Helper()
	ae, ok := apierror.As(err)
	if !ok || ae.Status() != http.StatusBadRequest {
		t.Fatalf("refused with %v, want a 400 API error", err)
	}
	if len(input) >= 8 && strings.Contains(ae.Message+ae.Detail, input) {
		t.Fatalf("the error %q echoes the input", ae.Detail)
	}
}

// methodRE matches an HTTP method: a token of ASCII characters (RFC 9110).
var methodRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// FuzzAuthVerify feeds the headers and the path by which a proxy names
// the original request to /auth/verify (X-Original-URI and
// X-Original-Method, X-Forwarded-Uri and X-Forwarded-Method, the path
// below /auth/verify). The request decided is one every present source
// names (URIs exactly, methods ignoring ASCII case and HTTP tokens only),
// with a path that passes the path checks and means the same printed and
// parsed again; every refusal is a 400 that does not echo the headers.
func FuzzAuthVerify(f *testing.F) {
	f.Add("/v4/accounts", "", "GET", "", "")
	f.Add("", "/v4/accounts?x=1", "", "delete", "")
	f.Add("/v4/accounts", "/v4/accounts", "GET", "get", "")
	f.Add("/v4/accounts", "/v4/roles", "GET", "GET", "")
	f.Add("", "", "", "", "/v4/token")
	f.Add("/v4/token", "", "POST", "", "/v4/accounts")
	f.Add("//evil.example/v4/token", "", "", "", "")
	f.Add("/v4/%2e%2e/accounts", "", "", "", "")
	f.Add("", "", "", "", "/apiaccess/ccmessaging/session?a=b")
	f.Fuzz(func(t *testing.T, originalURI, forwardedURI, originalMethod, forwardedMethod, below string) {
		reqURL, err := url.ParseRequestURI(VerifyPath + below)
		if err != nil {
			return
		}
		r := &http.Request{Method: http.MethodGet, URL: reqURL, Header: http.Header{}}
		for k, v := range map[string]string{
			"X-Original-URI": originalURI, "X-Forwarded-Uri": forwardedURI,
			"X-Original-Method": originalMethod, "X-Forwarded-Method": forwardedMethod,
		} {
			if v != "" {
				r.Header.Set(k, v)
			}
		}
		method, u, err := originalRequest(r)
		if err != nil {
			ae, ok := apierror.As(err)
			if !ok || ae.Status() != http.StatusBadRequest {
				t.Fatalf("refused with %v, want a 400 API error", err)
			}
			for _, in := range []string{originalURI, forwardedURI, originalMethod, forwardedMethod, below} {
				if len(in) >= 8 && strings.Contains(ae.Message+ae.Detail, in) {
					t.Fatalf("the error %q echoes the input %q", ae.Detail, in)
				}
			}
			return
		}
		var uris, methods []string
		if originalURI != "" {
			uris = append(uris, originalURI)
		}
		if forwardedURI != "" {
			uris = append(uris, forwardedURI)
		}
		if rest, ok := strings.CutPrefix(reqURL.EscapedPath(), VerifyPath); ok && rest != "" {
			if reqURL.RawQuery != "" {
				rest += "?" + reqURL.RawQuery
			}
			uris = append(uris, rest)
			methods = append(methods, r.Method)
		}
		for _, m := range []string{originalMethod, forwardedMethod} {
			if m != "" {
				methods = append(methods, m)
			}
		}
		for _, s := range uris {
			if s != uris[0] {
				t.Fatalf("decided %q although the sources name %q", u, uris)
			}
		}
		if len(methods) == 0 {
			methods = []string{http.MethodGet}
		}
		if !methodRE.MatchString(method) || method != strings.ToUpper(method) ||
			slices.ContainsFunc(methods, func(m string) bool { return !strings.EqualFold(m, method) || !methodRE.MatchString(m) }) {
			t.Fatalf("decided method %q although the sources name %q", method, methods)
		}
		if u.Host != "" || u.Scheme != "" || checkPath(u) != nil {
			t.Fatalf("decided URL %q (host %q) fails the path checks", u, u.Host)
		}
		again, err := url.ParseRequestURI(u.RequestURI())
		if err != nil || again.Path != u.Path || again.RawQuery != u.RawQuery {
			t.Fatalf("decided URL %q printed as %q parses to %v, %v", u, u.RequestURI(), again, err)
		}
		if _, err := mapRequest(method, u, nil); err != nil {
			t.Fatalf("mapRequest without a body failed: %v", err)
		}
	})
}
