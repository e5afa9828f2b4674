package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/servertest"
)

const rootPW = servertest.RootPassword

// testServer is a real Gatehouse (servertest.Server) seen through the
// short names these tests use.
type testServer struct {
	*servertest.Server
	t *testing.T
}

// start runs a server; mod adjusts the configuration first.
func start(t *testing.T, mod func(*server.Config)) *testServer {
	t.Helper()
	return &testServer{Server: servertest.Start(t, mod), t: t}
}

func (ts *testServer) restart() { ts.t.Helper(); ts.Restart() }

// reply is a response with its body read.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T, v any) {
	t.Helper()
	servertest.Reply{Body: r.body}.JSON(t, v)
}

// apiError is the error model's body.
type apiError struct {
	ErrorCode    string `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
	Detail       string `json:"detail"`
}

// call sends a request (see servertest.Send).
func (ts *testServer) call(method, path, token string, body any, headers ...string) reply {
	ts.t.Helper()
	r := ts.Call(method, path, token, body, headers...)
	return reply{status: r.Status, header: r.Header, body: r.Body}
}

// login returns a token for name, failing the test otherwise.
func (ts *testServer) login(name, pw string) string { ts.t.Helper(); return ts.Login(name, pw) }

func (ts *testServer) root() string { return ts.Root() }

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

// wantCode checks the status and errorCode of an error in the error model.
func wantCode(t *testing.T, r reply, status int, code string) {
	t.Helper()
	var e apiError
	r.json(t, &e)
	if r.status != status || e.ErrorCode != code {
		t.Fatalf("want %d %s, got %d %s", status, code, r.status, r.body)
	}
}
