// Package httpapi is Gatehouse's HTTP surface: routing, JSON decoding and
// encoding, the error model, and middleware (client IP, body limits, rate
// limits, authentication, metrics). Handlers decode a request, call a
// domain package and render its answer; they hold no domain rules.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/apifabric"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/ccmessaging"
	"github.com/gatehouse/gatehouse/internal/engine"
	"github.com/gatehouse/gatehouse/internal/httpapi/console"
	"github.com/gatehouse/gatehouse/internal/httpapi/gateway"
	"github.com/gatehouse/gatehouse/internal/httpapi/wire"
	"github.com/gatehouse/gatehouse/internal/keyring"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Options configure the HTTP surface.
type Options struct {
	// Proxies are the peers whose X-Forwarded-For / X-Real-IP are believed;
	// nil: none.
	Proxies *wire.Proxies
	// RateLimit is the sustained per-client-IP rate of the token-issuing
	// endpoints in requests per second (0 disables limiting), RateBurst its burst.
	RateLimit float64
	RateBurst int
	// Now is the rate limits' clock; nil is time.Now.
	Now func() time.Time
	// Version is the version GET /version answers.
	Version string
	// Gateway serves /auth/verify and the upstreams of gateway mode, for
	// paths no endpoint of Gatehouse's own takes; internal/server composes
	// it. Nil: neither.
	Gateway *gateway.Gateway
	// AdminMetrics leaves /metrics to the admin listener (AdminHandler):
	// the public listener does not serve it.
	AdminMetrics bool
	// TracerProvider, when set, gives every request a server span that
	// continues the trace of its traceparent header (docs/operations.md);
	// nil: no tracing.
	TracerProvider trace.TracerProvider
	// StoreBackend names the store ("bolt" or "etcd") in backups.
	StoreBackend string
	// Issuer is the issuer of /.well-known/openid-configuration; empty:
	// the origin each request was sent to.
	Issuer string
	// FeedHeartbeat is how often the revocation feed writes a heartbeat
	// [DefaultFeedHeartbeat].
	FeedHeartbeat time.Duration
	// ConsoleSecret keys the CSRF tokens of the admin console under
	// /console/ (console.Deps.Secret); nil leaves the console out.
	ConsoleSecret []byte
}

// Deps are the domain services the HTTP surface calls.
type Deps struct {
	Store  store.Store
	Engine *engine.Engine
	Keys   *keyring.Ring
	Audit  *audit.Log
	Logger *slog.Logger
	// Fabric serves API Fabric apps and tokenByAkSk; Messaging serves
	// channels, sessions and the ccmessaging API. Nil leaves them out.
	Fabric    *apifabric.Service
	Messaging *ccmessaging.Service
}

// Server routes and serves Gatehouse's HTTP API.
type Server struct {
	Deps
	mux     *routeMux
	errs    wire.Errors
	proxies *wire.Proxies
	limiter *ipLimiter
	gateway *gateway.Gateway
	// adminMetrics: /metrics is served by AdminHandler only.
	adminMetrics bool
	version      string
	// tracer starts request spans; nil when tracing is off.
	tracer       trace.Tracer
	storeBackend string
	issuer       string
	// heartbeat is the revocation feed's; streamsDone is closed by
	// CloseStreams.
	heartbeat     time.Duration
	streamsDone   chan struct{}
	closeStreams  sync.Once
	consoleSecret []byte
}

// New builds the HTTP surface.
func New(d Deps, opts Options) *Server {
	if d.Logger == nil {
		d.Logger = discard
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{Deps: d, mux: &routeMux{ServeMux: http.NewServeMux()}, errs: wire.Errors{Logger: d.Logger}, proxies: opts.Proxies,
		limiter: newIPLimiter(opts.RateLimit, opts.RateBurst, opts.Now), gateway: opts.Gateway,
		version: opts.Version, adminMetrics: opts.AdminMetrics, storeBackend: opts.StoreBackend, issuer: opts.Issuer,
		consoleSecret: opts.ConsoleSecret}
	if opts.TracerProvider != nil {
		s.tracer = opts.TracerProvider.Tracer(telemetry.Scope)
	}
	s.heartbeat, s.streamsDone = opts.FeedHeartbeat, make(chan struct{})
	if s.heartbeat <= 0 {
		s.heartbeat = DefaultFeedHeartbeat
	}
	s.routes()
	return s
}

// routes registers every endpoint.
func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	if !s.adminMetrics {
		s.mux.Handle("GET /metrics", metricsHandler())
	}
	s.versionRoutes()
	s.mux.HandleFunc("GET /openapi.json", serveOpenAPI)
	s.engineRoutes()
	s.keyRoutes()
	s.backupRoutes()
	s.revocationRoutes()
	s.fabricRoutes()
	s.messagingRoutes()
	if s.gateway != nil {
		s.mux.Handle(gateway.VerifyPath, s.gateway.AuthVerify())
		s.mux.dispatch(gateway.VerifyPath+"/", s.gateway.AuthVerify())
	}
	if s.consoleSecret != nil {
		s.mux.dispatch(console.Prefix, s.console())
	}
}

// console builds the admin console over the same domain services, the
// same authentication, identity (callerOf), rate limit, key rotation and
// trusted proxies as the API.
func (s *Server) console() *console.Console {
	return console.New(console.Deps{Engine: s.Engine, Fabric: s.Fabric, Messaging: s.Messaging, Keys: s.Keys,
		Audit: s.Audit, Logger: s.Logger, Secret: s.consoleSecret, Caller: s.callerOf, Allow: s.limiter.allow,
		RotateKey: s.rotateKey, Authenticate: s.consoleAuthenticate, Proxies: s.proxies})
}

// Routes returns the operations registered: "METHOD /path" with the mux's wildcards, or "/path" for a route that
// takes every method. Paths a dispatcher serves below a prefix (the
// ccmessaging API, the Envoy form of /auth/verify) are not routes of
// their own; the ccmessaging endpoints are listed one by one. The admin
// console under console.Prefix serves HTML pages to browsers, not the
// API: it is a dispatcher too, and none of its pages is a route. The
// OpenAPI document (GET /openapi.json) describes exactly these.
func (s *Server) Routes() []string { return slices.Clone(s.mux.routes) }

// routeMux is the server's ServeMux, recording the patterns registered.
type routeMux struct {
	*http.ServeMux
	routes []string
}

// Handle registers h for pattern and records the route.
func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.ServeMux.Handle(pattern, h)
	m.record(pattern)
}

// record records a route served by a dispatcher.
func (m *routeMux) record(route string) { m.routes = append(m.routes, route) }

// HandleFunc registers h for pattern and records the route.
func (m *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

// dispatch registers h for pattern, a prefix below which h finds the
// operation itself, without recording a route.
func (m *routeMux) dispatch(pattern string, h http.Handler) { m.ServeMux.Handle(pattern, h) }

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.Store.Ping(ctx); err != nil || !s.Keys.Ready() || !s.Engine.Healthy() || !s.domainsHealthy() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready"))
		return
	}
	_, _ = w.Write([]byte("ok"))
}

// domainsHealthy reports whether the optional domain services are
// connected to the store.
func (s *Server) domainsHealthy() bool {
	return (s.Fabric == nil || s.Fabric.Healthy()) && (s.Messaging == nil || s.Messaging.Healthy())
}

// ServeHTTP implements http.Handler: it finds the route, answers unknown
// paths and wrong methods in the error model, gives the request its id,
// records metrics, writes the access log line and, with tracing on,
// the request's span.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	id := s.proxies.RequestID(r)
	w.Header().Set(wire.RequestIDHeader, id)
	r, access := wire.WithAccess(r)
	var span trace.Span
	if s.tracer != nil {
		r, span = s.startSpan(r)
	}
	defer func() {
		if span != nil {
			defer span.End()
		}
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.Logger.Error("panic serving request", "method", r.Method, "route", r.Pattern, "request_id", id, "panic", v)
			if !sw.wrote {
				s.errs.Write(sw, r, apierror.Internal)
			}
		}
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		elapsed := time.Since(start)
		metrics.Requests.WithLabelValues(route, methodLabel(r.Method), strconv.Itoa(sw.status)).Inc()
		metrics.Latency.WithLabelValues(route).Observe(elapsed.Seconds())
		s.logAccess(r, route, sw, elapsed, id, access)
		if span != nil {
			describeSpan(span, r.Method, route, sw.status)
		}
	}()
	_, pattern := s.mux.Handler(r)
	switch {
	case pattern == "":
		s.unmatched(sw, r)
	case declaresTooLarge(r) && refusesLargeBody(pattern):
		r.Pattern = pattern
		s.errs.Write(sw, r, errTooLarge)
	default:
		s.mux.ServeHTTP(sw, r)
	}
}

// startSpan starts the server span of r, a child of the trace context
// r's headers carry, if any, and returns r with the span in its context.
// The span is named and described when the request ends (describeSpan),
// once its route is known.
func (s *Server) startSpan(r *http.Request) (*http.Request, trace.Span) {
	ctx := telemetry.TraceContext.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := s.tracer.Start(ctx, "HTTP "+methodLabel(r.Method), trace.WithSpanKind(trace.SpanKindServer))
	return r.WithContext(ctx), span
}

// describeSpan names a request span by its method and route template,
// never the raw path, and records method, route and status; a 5xx
// answer marks it failed. Nothing else of the request is recorded:
// no header, query, body or credential.
func describeSpan(span trace.Span, method, route string, status int) {
	method = methodLabel(method)
	name := route
	if !strings.HasPrefix(route, method+" ") {
		name = method + " " + route
	}
	span.SetName(name)
	span.SetAttributes(
		attribute.String("http.request.method", method),
		attribute.String("http.route", route),
		attribute.Int("http.response.status_code", status),
	)
	if status >= 500 {
		span.SetStatus(codes.Error, "")
	}
}

// refusesLargeBody reports whether the route of pattern refuses a
// declared body over MaxBody before anything else: every route but the
// ccmessaging API, which does so for its own endpoints only, in its error
// model (its upstreams' bodies are theirs), and /auth/verify, which
// judges another request and reads no body (a proxy may pass on the
// original's Content-Length).
func refusesLargeBody(pattern string) bool {
	return !strings.HasPrefix(pattern, strings.TrimSuffix(wire.CCMessagingPrefix, "/")) &&
		!strings.HasPrefix(pattern, gateway.VerifyPath)
}

// methodLabel bounds the method label of metrics: clients choose the
// method, and every distinct label value is kept forever.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// unmatched answers a request no route takes: 405 when the path exists
// with other methods, both in the error model; else the gateway's
// upstream for the path, if any, or 404.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request) {
	h, _ := s.mux.Handler(r)
	probe := &headerProbe{header: http.Header{}}
	h.ServeHTTP(probe, r)
	if probe.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", probe.header.Get("Allow"))
		s.errs.Write(w, r, apierror.MethodNotAllowed)
		return
	}
	if s.upstream(w, r) {
		return
	}
	s.errs.Write(w, r, apierror.NotFound)
}

// logAccess writes the access log line of a request (docs/operations.md):
// its route template, never its raw path, and the caller's credential
// family and subject, never a credential.
func (s *Server) logAccess(r *http.Request, route string, sw *statusWriter, elapsed time.Duration, id string, a *wire.Access) {
	ctx := r.Context()
	if !s.Logger.Enabled(ctx, slog.LevelInfo) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("route", route),
		slog.Int("status", sw.status),
		slog.Int64("bytes", sw.bytes),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		slog.String("client", s.proxies.ClientIP(r)),
		slog.String("request_id", id),
	}
	if a.Family != "" {
		attrs = append(attrs, slog.String("token_family", a.Family), slog.String("subject", a.Subject))
	}
	s.Logger.LogAttrs(ctx, slog.LevelInfo, "request", attrs...)
}

// statusWriter remembers the status and the number of body bytes
// written, for metrics and the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// headerProbe captures what the mux's own 404/405 handlers would answer.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header         { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *headerProbe) WriteHeader(code int)        { p.status = code }

// upstream hands r to the gateway's upstream for its path, if any, and
// reports whether it did.
func (s *Server) upstream(w http.ResponseWriter, r *http.Request) bool {
	if s.gateway == nil {
		return false
	}
	prefix, up := s.gateway.Upstream(r.URL.Path)
	if up == nil {
		return false
	}
	r.Pattern = "upstream " + prefix
	up.ServeHTTP(w, r)
	return true
}
