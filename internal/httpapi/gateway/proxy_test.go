package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpapi/gateway"
	"github.com/gatehouse/gatehouse/internal/server"
)

// TestGatewayHeaders checks the identity headers, that client-sent
// X-Gatehouse-* headers never reach the upstream, and hop-by-hop headers.
func TestGatewayHeaders(t *testing.T) {
	t.Parallel()
	up := newEcho(t)
	g := start(t, nil, gateway.Route{Prefix: "/v4/", Upstream: up.URL})
	root := g.root()
	tok := g.user(root, "reader", perm(get, "service"))
	spoof := []string{
		"X-Gatehouse-Account", "root",
		"x-gatehouse-roles", "admin",
		"X-Gatehouse-User-Id", "someone",
		"X_Gatehouse_Account", "root",
		"X-GATEHOUSE-EXTRA", "1",
		"Connection", "X-Hop",
		"X-Hop", "secret",
		"X-Kept", "yes",
	}
	const path = "/v4/default/registry/microservices"
	proxied(t, g.do("GET", path+"?a=1", tok, nil, spoof...), path)
	s := up.last(t)
	if s.Query != "a=1" {
		t.Errorf("query %q", s.Query)
	}
	if got := s.Header.Values(gateway.HeaderAccount); len(got) != 1 || got[0] != "reader" {
		t.Errorf("account header %q", got)
	}
	if got := s.Header.Values(gateway.HeaderRoles); len(got) != 1 || got[0] != "reader" {
		t.Errorf("roles header %q", got)
	}
	for k := range s.Header {
		if lk := strings.ToLower(strings.ReplaceAll(k, "_", "-")); strings.HasPrefix(lk, "x-gatehouse-") && k != gateway.HeaderAccount && k != gateway.HeaderRoles {
			t.Errorf("spoofed header %s reached the upstream", k)
		}
	}
	if s.Header.Get("X-Hop") != "" {
		t.Error("a hop-by-hop header reached the upstream")
	}
	if s.Header.Get("X-Kept") != "yes" || s.Header.Get("Authorization") != "Bearer "+tok {
		t.Errorf("end-to-end headers lost: %v", s.Header)
	}
	if s.Header.Get("X-Forwarded-For") != "127.0.0.1" {
		t.Errorf("X-Forwarded-For %q", s.Header.Get("X-Forwarded-For"))
	}

	// A public API carries no identity, and spoofed headers are dropped too.
	proxied(t, g.do("GET", "/v4/default/registry/health", "", nil, spoof...), "/v4/default/registry/health")
	for k := range up.last(t).Header {
		if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(k, "_", "-")), "x-gatehouse-") {
			t.Errorf("header %s reached the upstream of a public API", k)
		}
	}
}

// TestGatewayStreaming checks that a response streams through (each
// server-sent event arrives before the upstream writes the next) and
// that a request body reaches the upstream whole.
func TestGatewayStreaming(t *testing.T) {
	t.Parallel()
	next := make(chan struct{})
	var gotBody []byte
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotBody, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: event %d\n\n", i)
			http.NewResponseController(w).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	}))
	defer up.Close()
	g := start(t, nil, gateway.Route{Prefix: "/v4/", Upstream: up.URL})
	tok := g.root()

	body := strings.Repeat("0123456789", 200_000)
	req, _ := http.NewRequest("POST", g.base+"/v4/default/admin/stream", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	rd := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := rd.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: event %d\n", i) {
			t.Fatalf("event %d: %q %v", i, line, err)
		}
		if _, err := rd.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		next <- struct{}{} // the upstream writes the next event only now
	}
	if string(gotBody) != body {
		t.Fatalf("the upstream got %d bytes of %d", len(gotBody), len(body))
	}
}

// TestGatewayUpgrade checks that a connection upgrade (as websockets use)
// passes through both ways.
func TestGatewayUpgrade(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" || r.Header.Get(gateway.HeaderAccount) != "root" {
			http.Error(w, "bad upgrade", 400)
			return
		}
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "echo")
		w.WriteHeader(http.StatusSwitchingProtocols)
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		line, _ := brw.ReadString('\n')
		_, _ = brw.WriteString("echo: " + line)
		_ = brw.Flush()
	}))
	defer up.Close()
	g := start(t, nil, gateway.Route{Prefix: "/v4/", Upstream: up.URL})
	tok := g.root()

	conn, err := net.Dial("tcp", strings.TrimPrefix(g.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /v4/default/registry/microservices/s1/watcher HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n", tok)
	rd := bufio.NewReader(conn)
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	fmt.Fprintf(conn, "hello\n")
	line, err := rd.ReadString('\n')
	if err != nil || line != "echo: hello\n" {
		t.Fatalf("got %q %v", line, err)
	}
}

// TestGatewayUpstreamDown checks 502 in the error model when nothing
// listens upstream.
func TestGatewayUpstreamDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	g := start(t, nil, gateway.Route{Prefix: "/v4/", Upstream: "http://" + addr})
	e := wantErr(t, g.do("GET", "/v4/default/registry/microservices", g.root(), nil), 502, "502001")
	if e.ErrorMessage != "Bad gateway" || e.Detail != "" {
		t.Fatalf("%+v", e)
	}
}

// TestGatewayUpstreamTimeout checks 504 once the route's timeout passes
// without response headers, long before the upstream would answer; the
// gateway-wide timeout applies to routes that set none.
func TestGatewayUpstreamTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v4/default/admin/fast" {
			return
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer up.Close()
	defer close(release)
	g := start(t, func(c *server.Config) { c.UpstreamTimeout = 300 * time.Millisecond },
		gateway.Route{Prefix: "/v4/", Upstream: up.URL, Timeout: 200 * time.Millisecond},
		gateway.Route{Prefix: "/slow/", Upstream: up.URL, Resource: "ops"},
	)
	tok := g.root()
	for _, path := range []string{"/v4/default/admin/slow", "/slow/x"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", g.base+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err != nil {
			t.Fatalf("%s: %v (the gateway did not time out)", path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantErr(t, reply{status: resp.StatusCode, header: resp.Header, body: b}, 504, "504001")
	}
	if r := g.do("GET", "/v4/default/admin/fast", tok, nil); r.status != 200 {
		t.Fatalf("fast request: %d %s", r.status, r.body)
	}
}
