package gateway_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/gatehouse/gatehouse/internal/httpapi/gateway"
	"github.com/gatehouse/gatehouse/internal/server"
)

// BenchmarkGatewayLatency measures a small GET sent straight to an
// upstream and the same GET through Gatehouse's gateway (engine token,
// Service Center mapping, RBAC, header rewriting, proxying); the
// difference of the two is what the gateway adds. auth-verify is the
// round trip a proxy makes to /auth/verify for the same request. Besides
// ns/op it reports the median and 99th percentile of single requests,
// sent one at a time over kept-alive connections.
func BenchmarkGatewayLatency(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"services":[]}`)
	}))
	defer up.Close()
	g := start(b, nil, gateway.Route{Prefix: "/v4/", Upstream: up.URL})
	tok := g.user(g.root(), "reader", perm(get, "service"))
	const path = "/v4/default/registry/microservices"

	for _, tc := range []struct{ name, url string }{
		{"direct", up.URL + path},
		{"gateway", g.base + path},
		{"auth-verify", g.base + gateway.VerifyPath},
	} {
		b.Run(tc.name, func(b *testing.B) { measureLatency(b, tc.url, tok, path) })
	}
}

// BenchmarkGatewayTracing measures the gateway and /auth/verify requests
// of BenchmarkGatewayLatency with tracing off and on (every request
// sampled, spans batched to an exporter that drops them): what tracing
// costs, exporting aside.
func BenchmarkGatewayTracing(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"services":[]}`)
	}))
	defer up.Close()
	const path = "/v4/default/registry/microservices"
	for _, on := range []bool{false, true} {
		g := start(b, func(cfg *server.Config) {
			if on {
				tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
				b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
				cfg.TracerProvider = tp
			}
		}, gateway.Route{Prefix: "/v4/", Upstream: up.URL})
		tok := g.user(g.root(), "reader", perm(get, "service"))
		tracing := map[bool]string{false: "off", true: "on"}[on]
		b.Run("gateway/tracing-"+tracing, func(b *testing.B) { measureLatency(b, g.base+path, tok, path) })
		b.Run("auth-verify/tracing-"+tracing, func(b *testing.B) { measureLatency(b, g.base+gateway.VerifyPath, tok, path) })
	}
}

// measureLatency sends a GET of url with tok and X-Original-URI path,
// one at a time over kept-alive connections, and reports besides ns/op
// the median and 99th percentile of single requests.
func measureLatency(b *testing.B, url, tok, path string) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer hc.CloseIdleConnections()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("X-Original-URI", path)
	lat := make([]time.Duration, 0, 1<<16)
	for b.Loop() {
		t0 := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2])/1e3, "median-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100])/1e3, "p99-µs")
}
