package server_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/gatehouse/gatehouse/internal/httpapi/gateway"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/internal/store/etcd/etcdtest"
)

// traced starts a test server whose spans go to an in-memory exporter.
func traced(t *testing.T, mod func(*server.Config)) (*servertest.Server, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	s := servertest.Start(t, func(cfg *server.Config) {
		cfg.TracerProvider = tp
		if mod != nil {
			mod(cfg)
		}
	})
	return s, exp
}

// requestSpan waits for the ended server span named name (a request
// span ends just after its answer is written) and returns it with every
// span ended so far.
func requestSpan(t *testing.T, exp *tracetest.InMemoryExporter, name string) (tracetest.SpanStub, tracetest.SpanStubs) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		spans := exp.GetSpans()
		for _, s := range spans {
			if s.Name == name && s.SpanKind == trace.SpanKindServer {
				return s, spans
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request span %q among %v", name, names(spans))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

// children returns the spans whose parent is p.
func children(spans tracetest.SpanStubs, p tracetest.SpanStub) tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range spans {
		if s.Parent.SpanID() == p.SpanContext.SpanID() && s.Parent.TraceID() == p.SpanContext.TraceID() {
			out = append(out, s)
		}
	}
	return out
}

// child returns the first child of p named name, failing the test
// without one.
func child(t *testing.T, spans tracetest.SpanStubs, p tracetest.SpanStub, name string) tracetest.SpanStub {
	t.Helper()
	kids := children(spans, p)
	for _, s := range kids {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("span %q has no child %q; children: %v", p.Name, name, names(kids))
	return tracetest.SpanStub{}
}

// attr returns the value of attribute key of s as a string ("" if none).
func attr(s tracetest.SpanStub, key string) string {
	for _, a := range s.Attributes {
		if string(a.Key) == key {
			return a.Value.Emit()
		}
	}
	return ""
}

// tree renders the spans below root with their durations.
func tree(spans tracetest.SpanStubs, root tracetest.SpanStub) string {
	var b strings.Builder
	var walk func(s tracetest.SpanStub, depth int)
	walk = func(s tracetest.SpanStub, depth int) {
		fmt.Fprintf(&b, "%s%s  %v", strings.Repeat("  ", depth), s.Name, s.EndTime.Sub(s.StartTime).Round(time.Microsecond))
		for _, a := range s.Attributes {
			fmt.Fprintf(&b, " %s=%s", a.Key, a.Value.Emit())
		}
		b.WriteByte('\n')
		kids := children(spans, s)
		slices.SortFunc(kids, func(x, y tracetest.SpanStub) int { return x.StartTime.Compare(y.StartTime) })
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	walk(root, 0)
	return b.String()
}

// noSecretsInSpans fails the test when a span's name, attributes, events,
// status or resource contain one of secrets.
func noSecretsInSpans(t *testing.T, spans tracetest.SpanStubs, secrets ...string) {
	t.Helper()
	for _, s := range spans {
		texts := []string{s.Name, s.Status.Description}
		for _, a := range s.Attributes {
			texts = append(texts, string(a.Key), a.Value.Emit())
		}
		for _, e := range s.Events {
			texts = append(texts, e.Name)
			for _, a := range e.Attributes {
				texts = append(texts, string(a.Key), a.Value.Emit())
			}
		}
		if s.Resource != nil {
			for _, a := range s.Resource.Attributes() {
				texts = append(texts, a.Value.Emit())
			}
		}
		for _, txt := range texts {
			for _, secret := range secrets {
				if secret != "" && strings.Contains(txt, secret) {
					t.Errorf("span %q records a secret in %q", s.Name, txt)
				}
			}
		}
	}
}

func TestTracingLoginSpans(t *testing.T) {
	s, exp := traced(t, nil)
	r := servertest.Send(t, "POST", s.Base+"/v4/token", "", map[string]string{"name": "root", "password": servertest.RootPassword})
	if r.Status != http.StatusOK {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	var tok struct{ Token string }
	r.JSON(t, &tok)
	req, spans := requestSpan(t, exp, "POST /v4/token")
	t.Logf("login trace:\n%s", tree(spans, req))
	if req.Parent.IsValid() {
		t.Errorf("request span has parent %v without a traceparent", req.Parent)
	}
	for key, want := range map[string]string{"http.request.method": "POST", "http.route": "POST /v4/token", "http.response.status_code": "200"} {
		if got := attr(req, key); got != want {
			t.Errorf("request span %s = %q, want %q", key, got, want)
		}
	}
	child(t, spans, req, "password.verify")
	child(t, spans, req, "token.sign")
	get := child(t, spans, req, "store.get")
	if got := attr(get, "gatehouse.store.table"); got != "lockouts/" {
		t.Errorf("store.get table = %q, want lockouts/", got)
	}
	if got := attr(get, "db.system.name"); got != "bolt" {
		t.Errorf("store.get db.system.name = %q, want bolt", got)
	}

	const alicePW = "Alice-Passw0rd!x"
	r = servertest.Send(t, "POST", s.Base+"/v4/accounts", tok.Token, map[string]any{"name": "alice", "password": alicePW, "roles": []string{"developer"}})
	if r.Status != http.StatusOK {
		t.Fatalf("create account: %d %s", r.Status, r.Body)
	}
	req, spans = requestSpan(t, exp, "POST /v4/accounts")
	t.Logf("account creation trace:\n%s", tree(spans, req))
	child(t, spans, req, "password.hash")
	child(t, spans, req, "store.create")
	noSecretsInSpans(t, spans, servertest.RootPassword, tok.Token, alicePW)
}

func TestTracingContinuesIncomingTrace(t *testing.T) {
	s, exp := traced(t, nil)
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	r := servertest.Send(t, "GET", s.Base+"/version", "", nil, "Traceparent", "00-"+traceID+"-"+parentID+"-01")
	if r.Status != http.StatusOK {
		t.Fatalf("version: %d %s", r.Status, r.Body)
	}
	req, _ := requestSpan(t, exp, "GET /version")
	if got := req.SpanContext.TraceID().String(); got != traceID {
		t.Errorf("trace id %s, want the traceparent's %s", got, traceID)
	}
	if got := req.Parent.SpanID().String(); got != parentID || !req.Parent.IsRemote() {
		t.Errorf("parent %s (remote %v), want the traceparent's %s", got, req.Parent.IsRemote(), parentID)
	}
}

// upstreamRecorder is an upstream that remembers the traceparent of the
// last request it received.
func upstreamRecorder(t *testing.T) (*httptest.Server, func() string) {
	var mu sync.Mutex
	var got string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Get("Traceparent")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"services":[]}`))
	}))
	t.Cleanup(up.Close)
	return up, func() string { mu.Lock(); defer mu.Unlock(); return got }
}

func TestTracingReachesUpstreams(t *testing.T) {
	up, seen := upstreamRecorder(t)
	s, exp := traced(t, func(cfg *server.Config) {
		cfg.Routes = []gateway.Route{{Prefix: "/v4/", Upstream: up.URL}}
	})
	root := s.Root()
	const path = "/v4/default/registry/microservices"
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, incoming := range []string{"", "00-" + traceID + "-00f067aa0ba902b7-01"} {
		exp.Reset()
		var headers []string
		if incoming != "" {
			headers = []string{"Traceparent", incoming}
		}
		r := servertest.Send(t, "GET", s.Base+path, root, nil, headers...)
		if r.Status != http.StatusOK {
			t.Fatalf("through the gateway: %d %s", r.Status, r.Body)
		}
		req, spans := requestSpan(t, exp, "GET upstream /v4/")
		parts := strings.Split(seen(), "-")
		if len(parts) != 4 {
			t.Fatalf("upstream got traceparent %q", seen())
		}
		if parts[1] != req.SpanContext.TraceID().String() || parts[2] != req.SpanContext.SpanID().String() {
			t.Errorf("upstream got traceparent %q, want trace %s and parent %s (the request span)", seen(),
				req.SpanContext.TraceID(), req.SpanContext.SpanID())
		}
		if incoming != "" && parts[1] != traceID {
			t.Errorf("upstream got trace %s, want the client's %s", parts[1], traceID)
		}
		noSecretsInSpans(t, spans, root, servertest.RootPassword)
	}
}

// TestUntracedGatewayPassesTraceContext: with tracing off, the client's
// trace context reaches the upstream as it came.
func TestUntracedGatewayPassesTraceContext(t *testing.T) {
	up, seen := upstreamRecorder(t)
	s := servertest.Start(t, func(cfg *server.Config) { cfg.Routes = []gateway.Route{{Prefix: "/v4/", Upstream: up.URL}} })
	const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if r := servertest.Send(t, "GET", s.Base+"/v4/default/registry/microservices", s.Root(), nil, "Traceparent", incoming); r.Status != http.StatusOK {
		t.Fatalf("through the gateway: %d %s", r.Status, r.Body)
	}
	if seen() != incoming {
		t.Errorf("upstream got traceparent %q, want %q", seen(), incoming)
	}
}

func TestTracingEtcdRoundTrips(t *testing.T) {
	c := etcdtest.Start(t, t.TempDir(), 1)
	s, exp := traced(t, func(cfg *server.Config) {
		cfg.Store, cfg.EtcdEndpoints = "etcd", c.Endpoints()
	})
	r := servertest.Send(t, "POST", s.Base+"/v4/token", "", map[string]string{"name": "root", "password": servertest.RootPassword})
	if r.Status != http.StatusOK {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	req, spans := requestSpan(t, exp, "POST /v4/token")
	t.Logf("login trace on etcd:\n%s", tree(spans, req))
	get := child(t, spans, req, "store.get")
	if got := attr(get, "db.system.name"); got != "etcd" {
		t.Errorf("store.get db.system.name = %q, want etcd", got)
	}
	rpc := child(t, spans, get, "etcdserverpb.KV/Range")
	if rpc.SpanKind != trace.SpanKindClient {
		t.Errorf("etcd round trip span kind %v, want client", rpc.SpanKind)
	}
	// Background calls (watches, lease keep-alives) start no trace: every
	// gRPC span belongs to a request's trace.
	for _, sp := range spans {
		if strings.HasPrefix(sp.Name, "etcdserverpb.") && !sp.Parent.IsValid() {
			t.Errorf("etcd call %s is a root span", sp.Name)
		}
	}
	var tok struct{ Token string }
	r.JSON(t, &tok)
	noSecretsInSpans(t, spans, servertest.RootPassword, tok.Token)
}

// receiver is an in-process OTLP/gRPC trace collector.
type receiver struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans map[string]string // span name → service.name of its resource
}

func (r *receiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				r.spans[sp.GetName()] = service
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// startReceiver serves an OTLP receiver on 127.0.0.1:0 and returns it
// with its address.
func startReceiver(t *testing.T) (*receiver, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rcv := &receiver{spans: map[string]string{}}
	gs := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(gs, rcv)
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	return rcv, ln.Addr().String()
}

// TestOTLPExport: --otlp-endpoint (or OTEL_EXPORTER_OTLP_ENDPOINT alone)
// sends the spans to an OTLP collector; a stopping server flushes them.
func TestOTLPExport(t *testing.T) {
	for _, viaEnv := range []bool{false, true} {
		t.Run(map[bool]string{false: "flag", true: "env"}[viaEnv], func(t *testing.T) {
			rcv, addr := startReceiver(t)
			t.Setenv("OTEL_SERVICE_NAME", "gatehouse-test")
			if viaEnv {
				t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+addr)
			}
			s := servertest.Start(t, func(cfg *server.Config) {
				if !viaEnv {
					cfg.OTLPEndpoint = "http://" + addr
				}
			})
			s.Root()
			s.Stop()
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			service, ok := rcv.spans["POST /v4/token"]
			if !ok {
				t.Fatalf("the collector received no login span; it received %v", rcv.spans)
			}
			if service != "gatehouse-test" {
				t.Errorf("service.name %q, want OTEL_SERVICE_NAME's gatehouse-test", service)
			}
			for _, name := range []string{"password.verify", "token.sign"} {
				if _, ok := rcv.spans[name]; !ok {
					t.Errorf("the collector received no %s span", name)
				}
			}
		})
	}
}
