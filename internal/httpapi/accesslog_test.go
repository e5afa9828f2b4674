package httpapi_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/httpapi/gateway"
	"github.com/gatehouse/gatehouse/internal/server"
)

// logSink collects a server's JSON log lines.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// accessLine waits for the access log line of the request with id.
func (l *logSink) accessLine(t *testing.T, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, line := range strings.Split(l.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "request" && m["request_id"] == id {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access log line for request %s in:\n%s", id, l.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startLogged runs a server logging JSON at info level into the returned sink.
func startLogged(t *testing.T, mod func(*server.Config)) (*testServer, *logSink) {
	sink := &logSink{}
	ts := start(t, func(c *server.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(sink, nil))
		if mod != nil {
			mod(c)
		}
	})
	return ts, sink
}

// wantFields checks fields of an access log line.
func wantFields(t *testing.T, line map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if line[k] != v {
			t.Errorf("access log %s = %v, want %v (line %v)", k, line[k], v, line)
		}
	}
}

var hexID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestAccessLog(t *testing.T) {
	ts, sink := startLogged(t, nil)
	root := ts.root()

	// An authenticated engine request: the route template, not the path.
	r := ts.call("GET", "/v4/accounts/root", root, nil)
	if r.status != 200 {
		t.Fatalf("get account: %d %s", r.status, r.body)
	}
	id := r.header.Get("X-Request-Id")
	if !hexID.MatchString(id) {
		t.Fatalf("X-Request-Id %q", id)
	}
	line := sink.accessLine(t, id)
	wantFields(t, line, map[string]any{
		"level": "INFO", "method": "GET", "route": "GET /v4/accounts/{name}", "status": 200.0,
		"bytes": float64(len(r.body)), "client": "127.0.0.1", "token_family": "engine", "subject": "root",
	})
	if d, ok := line["duration_ms"].(float64); !ok || d < 0 {
		t.Errorf("duration_ms %v", line["duration_ms"])
	}

	// A ccmessaging request: channel and user, never the tokens.
	c := newCCM(ts, "")
	tok := c.apply("u1")
	r = c.session(tok)
	if r.status != 200 {
		t.Fatalf("session: %d %s", r.status, r.body)
	}
	wantFields(t, sink.accessLine(t, r.header.Get("X-Request-Id")), map[string]any{
		"method": "GET", "route": "/apiaccess/ccmessaging/", "status": 200.0,
		"token_family": "ccmessaging", "subject": c.channel + "/u1",
	})

	// A failed login: no family, no subject, no password.
	const wrong = "Wrong-Passw0rd-Sentinel"
	r = ts.call("POST", "/v4/token", "", map[string]string{"name": "root", "password": wrong})
	if r.status != 401 {
		t.Fatalf("failed login: %d %s", r.status, r.body)
	}
	line = sink.accessLine(t, r.header.Get("X-Request-Id"))
	wantFields(t, line, map[string]any{"method": "POST", "route": "POST /v4/token", "status": 401.0})
	if _, ok := line["token_family"]; ok {
		t.Errorf("failed login logged a token family: %v", line)
	}

	// No token, password or secret anywhere in the log.
	log := sink.String()
	for name, secret := range map[string]string{
		"root password": rootPW, "wrong password": wrong, "root token": root,
		"app secret": c.app.AppSecret, "access token": c.access, "ccmessaging token": tok,
	} {
		if strings.Contains(log, secret) {
			t.Errorf("the log contains the %s", name)
		}
	}
}

func TestRequestID(t *testing.T) {
	var upstreamID string
	var mu sync.Mutex
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		upstreamID = r.Header.Get("X-Request-Id")
		mu.Unlock()
	}))
	defer up.Close()
	route := func(c *server.Config) {
		c.Routes = []gateway.Route{{Prefix: "/up/", Upstream: up.URL, Token: gateway.KindEngine, Resource: authz.ResourceService}}
	}

	t.Run("untrusted peer", func(t *testing.T) {
		ts, sink := startLogged(t, route)
		r := ts.call("GET", "/healthz", "", nil, "X-Request-Id", "client-chosen")
		id := r.header.Get("X-Request-Id")
		if !hexID.MatchString(id) {
			t.Fatalf("an untrusted peer's X-Request-Id was kept: %q", id)
		}
		sink.accessLine(t, id)

		r = ts.call("GET", "/up/x", ts.root(), nil, "X-Request-Id", "client-chosen")
		if r.status != 200 {
			t.Fatalf("upstream: %d %s", r.status, r.body)
		}
		id = r.header.Get("X-Request-Id")
		mu.Lock()
		got := upstreamID
		mu.Unlock()
		if !hexID.MatchString(id) || got != id {
			t.Fatalf("upstream received X-Request-Id %q, client %q", got, id)
		}
		wantFields(t, sink.accessLine(t, id), map[string]any{"route": "upstream /up/", "token_family": "engine", "subject": "root"})
	})

	t.Run("trusted proxy", func(t *testing.T) {
		ts, sink := startLogged(t, func(c *server.Config) {
			route(c)
			c.TrustedProxies = []string{"127.0.0.1"}
		})
		r := ts.call("GET", "/up/y", ts.root(), nil, "X-Request-Id", "edge-42", "X-Forwarded-For", "203.0.113.9")
		if r.status != 200 || r.header.Get("X-Request-Id") != "edge-42" {
			t.Fatalf("trusted proxy's X-Request-Id not echoed: %d %q", r.status, r.header.Get("X-Request-Id"))
		}
		mu.Lock()
		got := upstreamID
		mu.Unlock()
		if got != "edge-42" {
			t.Fatalf("upstream received X-Request-Id %q", got)
		}
		wantFields(t, sink.accessLine(t, "edge-42"), map[string]any{"client": "203.0.113.9"})

		// Not an id: replaced.
		r = ts.call("GET", "/healthz", "", nil, "X-Request-Id", strings.Repeat("a", 129))
		if id := r.header.Get("X-Request-Id"); !hexID.MatchString(id) {
			t.Fatalf("an overlong X-Request-Id was kept: %q", id)
		}
	})
}
