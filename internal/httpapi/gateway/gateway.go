// Package gateway enforces Gatehouse's tokens in front of other services.
// It owns the reverse proxy of gateway mode (routes of path prefixes to
// upstream URLs), Service Center's path → resource mapping used to decide
// engine-token requests, and the /auth/verify endpoint that existing
// proxies consult (nginx auth_request, Envoy ext_authz, Traefik
// forwardAuth). Tokens are verified by the engine and ccmessaging
// packages; errors are rendered by the writers the HTTP layer provides.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/ccmessaging"
	"github.com/gatehouse/gatehouse/internal/engine"
	"github.com/gatehouse/gatehouse/internal/httpapi/wire"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Config is what a Gateway needs.
type Config struct {
	Routes []Route
	// Timeout is the upstream timeout of routes that set none
	// [DefaultTimeout].
	Timeout time.Duration
	Engine  *engine.Engine
	// Sessions verifies ccmessaging requests; nil disables ccmessaging
	// routes, and /auth/verify then treats every path as engine-token.
	Sessions *ccmessaging.Service
	// Proxies are the peers whose X-Forwarded-For names the client; nil:
	// none.
	Proxies *wire.Proxies
	Logger  *slog.Logger
}

// Gateway checks requests and forwards them to upstreams. It is safe for
// concurrent use.
type Gateway struct {
	cfg       Config
	errs      wire.Errors
	upstreams []*upstream // longest prefix first
}

// New builds a gateway; it fails on an invalid route or a prefix given
// twice.
func New(cfg Config) (*Gateway, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := ValidateRoutes(cfg.Routes, cfg.Sessions != nil); err != nil {
		return nil, err
	}
	g := &Gateway{cfg: cfg, errs: wire.Errors{Logger: cfg.Logger}}
	for _, r := range cfg.Routes {
		g.upstreams = append(g.upstreams, g.newUpstream(r))
	}
	slices.SortStableFunc(g.upstreams, func(a, b *upstream) int { return len(b.Prefix) - len(a.Prefix) })
	return g, nil
}

// ValidateRoutes checks routes as New does, so a server can refuse them
// before it writes anything: each route valid, no prefix twice, and
// ccmessaging routes only when sessions can be verified.
func ValidateRoutes(routes []Route, sessions bool) error {
	seen := map[string]bool{}
	for _, r := range routes {
		if err := r.validate(); err != nil {
			return err
		}
		if seen[r.Prefix] {
			return fmt.Errorf("route %q: prefix given twice", r.Prefix)
		}
		seen[r.Prefix] = true
		if r.kind() == KindCCMessaging && !sessions {
			return fmt.Errorf("route %q: ccmessaging verification is not available", r.Prefix)
		}
	}
	return nil
}

// Upstream returns the handler of the route whose prefix takes path (the
// longest one), and that prefix; nil when no route takes it.
func (g *Gateway) Upstream(path string) (string, http.Handler) {
	if u := g.upstreamFor(path); u != nil {
		return u.Prefix, u
	}
	return "", nil
}

// upstreamFor returns the route whose prefix takes path (the longest
// one), nil when none does.
func (g *Gateway) upstreamFor(path string) *upstream {
	for _, u := range g.upstreams {
		if u.matches(path) {
			return u
		}
	}
	return nil
}

// rules returns the route whose rules decide a request for path: the
// route that takes it, or, for a path no route takes, the defaults — a
// ccmessaging request under /apiaccess/ccmessaging/ (when sessions can be
// verified), an engine-token request with Service Center's mapping
// otherwise. Gateway mode and /auth/verify decide by the same rules.
func (g *Gateway) rules(path string) Route {
	if u := g.upstreamFor(path); u != nil {
		return u.Route
	}
	if strings.HasPrefix(path, wire.CCMessagingPrefix) && g.cfg.Sessions != nil {
		return Route{Token: KindCCMessaging}
	}
	return Route{Token: KindEngine}
}

// upstream is one route with its reverse proxy.
type upstream struct {
	Route
	g      *Gateway
	target *url.URL
	proxy  *httputil.ReverseProxy
}

func (g *Gateway) newUpstream(r Route) *upstream {
	u := &upstream{Route: r, g: g}
	u.target, _ = url.Parse(r.Upstream) // validated
	timeout := r.Timeout
	if timeout == 0 {
		timeout = g.cfg.Timeout
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext
	tr.ResponseHeaderTimeout = timeout
	tr.MaxIdleConnsPerHost = 64
	u.proxy = &httputil.ReverseProxy{
		Rewrite:        u.rewrite,
		Transport:      tr,
		FlushInterval:  -1,
		BufferPool:     copyBuffers,
		ModifyResponse: u.modifyResponse,
		ErrorHandler:   u.proxyError,
		ErrorLog:       slog.NewLogLogger(g.cfg.Logger.Handler(), slog.LevelWarn),
	}
	return u
}

// bufferPool recycles the buffers the proxies copy bodies through.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if buf, ok := b.p.Get().(*[]byte); ok {
		return *buf
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

var copyBuffers = &bufferPool{}

// identity is what a check learned about the caller.
type identity struct {
	header  http.Header // X-Gatehouse-* headers for the upstream
	renewed string      // a renewed ccmessaging-token for the client
}

type identityKey struct{}

func identityFrom(ctx context.Context) identity {
	id, _ := ctx.Value(identityKey{}).(identity)
	return id
}

// ServeHTTP checks the request and forwards it.
func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, err := u.check(r)
	if err != nil {
		u.writeError(w, r, err)
		return
	}
	// Responses may stream (server-sent events, upgraded connections):
	// the upstream timeout bounds the wait for headers instead.
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	if r.Header.Get("Upgrade") != "" {
		_ = rc.SetReadDeadline(time.Time{})
	}
	u.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
}

// check verifies the request by the route's rules.
func (u *upstream) check(r *http.Request) (identity, error) {
	if err := checkPath(r.URL); err != nil {
		return identity{}, err
	}
	return u.g.decide(r, u.Route, r.Method, r.URL, func() ([]byte, error) { return peekBody(r) })
}

// decide checks the credentials among r's headers for the request of
// method to u (the original request: the path before any strip-prefix or
// rewrite) by the rules of route rt — its token kind, its resource and
// verb, or Service Center's mapping with its public paths. body, when not
// nil, reads the body for the labels the mapping takes from it (gateway
// mode; /auth/verify never sees a body); it is called only once the
// engine token is known to be valid, so that anonymous clients cannot
// make the gateway buffer bodies. The engine token is verified once per
// decision. It is the one decision of both gateway mode and /auth/verify.
func (g *Gateway) decide(r *http.Request, rt Route, method string, u *url.URL, body func() ([]byte, error)) (identity, error) {
	if rt.kind() == KindCCMessaging {
		return g.checkSession(r)
	}
	verify := sync.OnceValues(func() (*engine.Principal, error) {
		return g.cfg.Engine.Verify(r.Header.Get("Authorization"))
	})
	if read := body; read != nil {
		body = func() ([]byte, error) {
			if _, err := verify(); err != nil {
				return nil, err
			}
			return read()
		}
	}
	t, err := rt.target(method, u, body)
	if err != nil {
		return identity{}, err
	}
	h, err := g.checkEngine(r, t, verify)
	return identity{header: h}, err
}

// target is what an engine-token request needs on route rt: the route's
// resource, or Service Center's mapping of the path.
func (rt Route) target(method string, u *url.URL, body func() ([]byte, error)) (target, error) {
	if rt.Resource != "" {
		verb := rt.Verb
		if verb == "" {
			verb = authz.VerbForMethod(method)
		}
		return target{access: accessPermission, resource: rt.Resource, verb: verb}, nil
	}
	return mapRequest(method, u, body)
}

// rewrite builds the upstream request: the target URL (after the route's
// strip-prefix or rewrite; the decision was made on the original path),
// X-Forwarded-* (X-Forwarded-For is the client as Gatehouse sees it,
// through its trusted proxies), no client-sent X-Gatehouse-* headers, the
// caller's identity, the trace context of the request's span when
// tracing is on, and without the credentials the route consumed.
func (u *upstream) rewrite(pr *httputil.ProxyRequest) {
	u.rewritePath(pr.Out.URL)
	pr.SetURL(u.target)
	pr.SetXForwarded()
	pr.Out.Header.Set("X-Forwarded-For", u.g.cfg.Proxies.ClientIP(pr.In))
	h := pr.Out.Header
	propagateTrace(pr.In.Context(), h)
	removeIdentityHeaders(h)
	for k, v := range identityFrom(pr.In.Context()).header {
		h[k] = v
	}
	switch {
	case u.kind() == KindCCMessaging:
		for _, k := range wire.SessionHeaders {
			h.Del(k)
		}
	case u.stripAuthorization():
		h.Del("Authorization")
	}
}

// propagateTrace replaces the trace context headers of an upstream
// request with those of the span in ctx, so the upstream's spans join the
// request's trace. Without a span (tracing off) the client's headers pass
// through as they came.
func propagateTrace(ctx context.Context, h http.Header) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	h.Del("Traceparent")
	h.Del("Tracestate")
	telemetry.TraceContext.Inject(ctx, propagation.HeaderCarrier(h))
}

// modifyResponse hands a renewed ccmessaging-token to the client.
func (u *upstream) modifyResponse(res *http.Response) error {
	if tok := identityFrom(res.Request.Context()).renewed; tok != "" {
		res.Header.Set(wire.SessionTokenHeader, tok)
	}
	return nil
}

// proxyError answers a failed upstream exchange: 504 when it timed out,
// 502 otherwise. A renewed token still reaches the client, which could
// not learn it later.
func (u *upstream) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if tok := identityFrom(r.Context()).renewed; tok != "" {
		w.Header().Set(wire.SessionTokenHeader, tok)
	}
	if r.Context().Err() != nil {
		return // the client went away
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		u.g.cfg.Logger.Warn("upstream timed out", "route", u.Prefix, "err", err)
		u.writeError(w, r, apierror.GatewayTimeout)
		return
	}
	u.g.cfg.Logger.Warn("upstream failed", "route", u.Prefix, "err", err)
	u.writeError(w, r, apierror.BadGateway)
}

func (u *upstream) writeError(w http.ResponseWriter, r *http.Request, err error) {
	u.g.writeError(w, r, u.kind(), err)
}

// writeError answers a refusal in the error model of the token kind.
func (g *Gateway) writeError(w http.ResponseWriter, r *http.Request, kind string, err error) {
	if kind == KindCCMessaging {
		g.errs.WriteCCM(w, r, err)
		return
	}
	g.errs.Write(w, r, err)
}

// identityHeaderPrefix starts every header Gatehouse sets for upstreams.
const identityHeaderPrefix = "x-gatehouse-"

// removeIdentityHeaders deletes every X-Gatehouse-* header, also when
// spelt with underscores, which some servers fold into the same name.
func removeIdentityHeaders(h http.Header) {
	for k := range h {
		if strings.HasPrefix(strings.ReplaceAll(strings.ToLower(k), "_", "-"), identityHeaderPrefix) {
			delete(h, k)
		}
	}
}

// The identity headers of an engine token.
const (
	HeaderAccount = "X-Gatehouse-Account"
	HeaderRoles   = "X-Gatehouse-Roles"
)

// checkEngine checks the engine token of r, as verify verifies it,
// against t and returns the identity headers of its account (none for a
// public target).
//
// It does not go through httpapi's Server.authenticate, which the API and
// the console share: that helper lives in the package that imports this
// one, authorizes without labels, and verifies, records and authorizes in
// one call, while the gateway verifies once per decision, before it knows
// the target when labels come from the body, needs no token for a public
// target, authorizes with the labels of the mapping, and checks the admin
// role for paths mapped to no resource. What the two share is the engine's
// Verify and Authorize and wire.Authenticated, which both call.
func (g *Gateway) checkEngine(r *http.Request, t target, verify func() (*engine.Principal, error)) (http.Header, error) {
	if t.access == accessPublic {
		return nil, nil
	}
	p, err := verify()
	if err != nil {
		return nil, err
	}
	wire.Authenticated(r, wire.FamilyEngine, p.Account)
	switch t.access {
	case accessPermission:
		err = g.cfg.Engine.Authorize(p, t.resource, t.verb, t.labels)
	case accessAdmin:
		if !slices.Contains(p.Roles, engine.AdminRole) {
			err = apierror.NoPermission.WithDetail("no resource is mapped to this path; it needs the admin role")
		}
	}
	if err != nil {
		return nil, err
	}
	return http.Header{
		HeaderAccount: {p.Account},
		HeaderRoles:   {strings.Join(p.Roles, ",")},
	}, nil
}
