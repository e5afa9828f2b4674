package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/server"
)

const rootPW = "Root-Passw0rd!"

// testServer is a real Gatehouse listening on 127.0.0.1:0 over a bolt
// store in a temporary directory.
type testServer struct {
	t    *testing.T
	srv  *server.Server
	cfg  server.Config
	base string
}

// start runs a server; mod adjusts the configuration first.
func start(t *testing.T, mod func(*server.Config)) *testServer {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.RootPassword = rootPW
	cfg.RateLimit = 0
	cfg.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	if mod != nil {
		mod(&cfg)
	}
	ts := &testServer{t: t, cfg: cfg}
	ts.boot()
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) boot() {
	ts.t.Helper()
	srv, err := server.Start(context.Background(), ts.cfg)
	if err != nil {
		ts.t.Fatalf("start: %v", err)
	}
	ts.srv, ts.base = srv, "http://"+srv.Addr()
}

func (ts *testServer) stop() {
	if ts.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		ts.t.Errorf("shutdown: %v", err)
	}
	ts.srv = nil
}

// restart stops the server and starts a new one on the same data.
func (ts *testServer) restart() {
	ts.t.Helper()
	ts.stop()
	ts.cfg.Listen = "127.0.0.1:0"
	ts.boot()
}

// reply is a response with its body read.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
}

// apiError is the error model's body.
type apiError struct {
	ErrorCode    string `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
	Detail       string `json:"detail"`
}

// call sends a request; body may be nil, a string (sent raw) or a value
// (sent as JSON). headers are name, value pairs.
func (ts *testServer) call(method, path, token string, body any, headers ...string) reply {
	ts.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			ts.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, ts.base+path, rd)
	if err != nil {
		ts.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// login returns a token for name, failing the test otherwise.
func (ts *testServer) login(name, pw string) string {
	ts.t.Helper()
	r := ts.call("POST", "/v4/token", "", map[string]string{"name": name, "password": pw})
	if r.status != 200 {
		ts.t.Fatalf("login %s: %d %s", name, r.status, r.body)
	}
	var out struct{ Token string }
	r.json(ts.t, &out)
	return out.Token
}

func (ts *testServer) root() string { return ts.login("root", rootPW) }

// wantOK checks a 200 with an empty body.
func wantOK(t *testing.T, r reply) {
	t.Helper()
	if r.status != 200 || len(r.body) != 0 {
		t.Fatalf("want 200 empty, got %d %s", r.status, r.body)
	}
}

// wantErr checks status, errorCode and errorMessage (SPEC §2) and that
// the body is JSON in the error model.
func wantErr(t *testing.T, r reply, status int, code, msg string) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("want error %s, got %d %q", code, r.status, r.body)
	}
	if r.status != status || e.ErrorCode != code || e.ErrorMessage != msg {
		t.Fatalf("want %d %s %q, got %d %s", status, code, msg, r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type %q", ct)
	}
	return e
}
