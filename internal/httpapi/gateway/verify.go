package gateway

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/httpapi/wire"
)

// VerifyPath is where the auth-request endpoint listens. Requests below
// it (VerifyPath + original path, as Envoy's ext_authz sends them) are
// answered too.
const VerifyPath = "/auth/verify"

// AuthVerify returns the handler of /auth/verify. It decides the original
// request, named by X-Original-Method / X-Original-URI (nginx),
// X-Forwarded-Method / X-Forwarded-Uri (Traefik) or the method and the
// path below /auth/verify (Envoy), with the credentials among the
// request's own headers, by the same rules as gateway mode: those of the
// gateway route that takes the path (token kind, resource and verb), else
// a ccmessaging request for paths under /apiaccess/ccmessaging/ and an
// engine-token request with Service Center's mapping otherwise. It
// answers 200 with the identity headers (and a renewed ccmessaging-token),
// or the native endpoints' 401/403 bodies; a request naming its original
// twice, differently, or with a method that is not an HTTP token, is 400.
func (g *Gateway) AuthVerify() http.Handler {
	return http.HandlerFunc(g.authVerify)
}

func (g *Gateway) authVerify(w http.ResponseWriter, r *http.Request) {
	method, u, err := originalRequest(r)
	if err != nil {
		g.errs.Write(w, r, err)
		return
	}
	// The rules of the route that takes the path, as in gateway mode.
	// The body is not available here: labels Service Center reads from a
	// body are left to the upstream's own check.
	rt := g.rules(u.Path)
	id, err := g.decide(r, rt, method, u, nil)
	if err != nil {
		g.writeError(w, r, rt.kind(), err)
		return
	}
	h := w.Header()
	for k, v := range id.header {
		h[k] = v
	}
	if id.renewed != "" {
		h.Set(wire.SessionTokenHeader, id.renewed)
	}
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// originalRequest returns the method and URL of the request a proxy asks
// about. Every source present must agree: a client that adds a header of
// another proxy's convention to mislead the decision gets 400.
func originalRequest(r *http.Request) (string, *url.URL, error) {
	uris := present(r.Header.Get("X-Original-URI"), r.Header.Get("X-Forwarded-Uri"))
	methods := present(r.Header.Get("X-Original-Method"), r.Header.Get("X-Forwarded-Method"))
	if rest, ok := strings.CutPrefix(r.URL.EscapedPath(), VerifyPath); ok && rest != "" {
		// Envoy's form: the original path below /auth/verify, the
		// original method as the request's own.
		if r.URL.RawQuery != "" {
			rest += "?" + r.URL.RawQuery
		}
		uris = append(uris, rest)
		methods = append(methods, r.Method)
	}
	if len(uris) == 0 {
		return "", nil, apierror.InvalidParams.WithDetail("the original URI is missing (X-Original-URI or X-Forwarded-Uri)")
	}
	if len(methods) == 0 {
		methods = []string{http.MethodGet}
	}
	if slices.ContainsFunc(methods, func(m string) bool { return !isMethod(m) }) {
		return "", nil, apierror.InvalidParams.WithDetail("the original method is not an HTTP method")
	}
	if !same(uris, false) || !same(methods, true) {
		return "", nil, apierror.InvalidParams.WithDetail("the original request is named twice, differently")
	}
	u, err := url.ParseRequestURI(uris[0])
	if err != nil || u.Host != "" || u.Scheme != "" {
		return "", nil, apierror.InvalidParams.WithDetail("the original URI is not a request path")
	}
	if err := checkPath(u); err != nil {
		return "", nil, err
	}
	return strings.ToUpper(methods[0]), u, nil
}

// isMethod reports whether m is an HTTP method: a token of RFC 9110's
// ASCII characters. Anything else is refused rather than case-folded,
// since Unicode folding would turn "poſt" into POST.
func isMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := range len(m) {
		c := m[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// present returns the non-empty values of vs.
func present(vs ...string) []string {
	var out []string
	for _, v := range vs {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// same reports whether every value of vs equals the first, ignoring case
// when fold is set.
func same(vs []string, fold bool) bool {
	for _, v := range vs[1:] {
		if v != vs[0] && (!fold || !strings.EqualFold(v, vs[0])) {
			return false
		}
	}
	return true
}
