package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/httpapi/gateway"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/servertest"
)

const rootPW = servertest.RootPassword

// gatehouse is a real server (servertest.Server) seen through the short
// names these tests use.
type gatehouse struct {
	*servertest.Server
	t    testing.TB
	base string
}

// start runs a server with routes; mod adjusts the configuration.
func start(t testing.TB, mod func(*server.Config), routes ...gateway.Route) *gatehouse {
	t.Helper()
	s := servertest.Start(t, func(cfg *server.Config) {
		cfg.Routes = routes
		if mod != nil {
			mod(cfg)
		}
	})
	return &gatehouse{Server: s, t: t, base: s.Base}
}

// reply is a response with its body read.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// apiError is the error model's body.
type apiError struct {
	ErrorCode    string `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
	Detail       string `json:"detail"`
}

// do sends a request to the server (see servertest.Send).
func (g *gatehouse) do(method, path, token string, body any, headers ...string) reply {
	g.t.Helper()
	return send(g.t, method, g.base+path, token, body, headers...)
}

func send(t testing.TB, method, url, token string, body any, headers ...string) reply {
	t.Helper()
	r := servertest.Send(t, method, url, token, body, headers...)
	return reply{status: r.Status, header: r.Header, body: r.Body}
}

// login returns a token for name.
func (g *gatehouse) login(name, password string) string { g.t.Helper(); return g.Login(name, password) }

func (g *gatehouse) root() string { return g.Root() }

// mustOK sends a request that must answer 200.
func (g *gatehouse) mustOK(method, path, token string, body any) reply {
	g.t.Helper()
	r := g.do(method, path, token, body)
	if r.status != 200 {
		g.t.Fatalf("%s %s: %d %s", method, path, r.status, r.body)
	}
	return r
}

// user creates a role with perms and an account holding it, and returns
// the account's token.
func (g *gatehouse) user(admin, name string, perms ...map[string]any) string {
	g.t.Helper()
	g.mustOK("POST", "/v4/roles", admin, map[string]any{"name": name, "perms": perms})
	pw := "Passw0rd!" + name
	g.mustOK("POST", "/v4/accounts", admin, map[string]any{"name": name, "password": pw, "roles": []string{name}})
	return g.login(name, pw)
}

// perm is one Permission of the role API.
func perm(verbs []string, types ...string) map[string]any {
	res := make([]map[string]any, len(types))
	for i, t := range types {
		res[i] = map[string]any{"type": t}
	}
	return map[string]any{"resources": res, "verbs": verbs}
}

// labelled is a Permission on one resource type narrowed by labels.
func labelled(verbs []string, typ string, labels map[string]string) map[string]any {
	return map[string]any{"resources": []map[string]any{{"type": typ, "labels": labels}}, "verbs": verbs}
}

// wantErr checks an error reply in the error model.
func wantErr(t *testing.T, r reply, status int, code string) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(r.body, &e); err != nil || r.status != status || e.ErrorCode != code {
		t.Fatalf("want %d %s, got %d %s", status, code, r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type %q", ct)
	}
	return e
}

// seen is what an upstream received.
type seen struct {
	Method, Path, Query string
	URI                 string // the request URI as sent, path escaping included
	Header              http.Header
	Body                []byte
}

// echo is an upstream that records requests and answers 200 with
// {"upstream":"<path>"}.
type echo struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func newEcho(t testing.TB) *echo {
	e := &echo{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.reqs = append(e.reqs, seen{r.Method, r.URL.Path, r.URL.RawQuery, r.RequestURI, r.Header.Clone(), b})
		e.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"upstream": r.URL.Path})
	}))
	t.Cleanup(e.Close)
	return e
}

// last returns the last request the upstream received.
func (e *echo) last(t *testing.T) seen {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.reqs) == 0 {
		t.Fatal("the upstream received nothing")
	}
	return e.reqs[len(e.reqs)-1]
}

// count returns how many requests the upstream received.
func (e *echo) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.reqs)
}

// proxied checks that r is the echo's answer for path.
func proxied(t *testing.T, r reply, path string) {
	t.Helper()
	var out struct{ Upstream string }
	if r.status != 200 || json.Unmarshal(r.body, &out) != nil || out.Upstream != path {
		t.Fatalf("want the upstream's answer for %s, got %d %s", path, r.status, r.body)
	}
}

// session is a live ccmessaging session with the credentials of its app.
type session struct {
	appKey, accessToken, token, channelID, userID string
}

// headers returns the three ccmessaging headers of s.
func (s session) headers() []string {
	return []string{"x-app-key", s.appKey, "Authorization", "Bearer " + s.accessToken, "ccmessaging-token", s.token}
}

// openSession creates an app and a channel open to it, and applies for a
// ccmessaging-token for userID.
func (g *gatehouse) openSession(admin, userID string) session {
	g.t.Helper()
	var app struct{ AppKey, AppSecret string }
	decode(g.t, g.mustOK("POST", "/v4/apps", admin, map[string]string{"name": "app-" + userID}), &app)
	var ch struct{ ID string }
	decode(g.t, g.mustOK("POST", "/v4/channels", admin, map[string]any{"name": "ch-" + userID, "appKeys": []string{app.AppKey}}), &ch)
	var at struct{ AccessToken string }
	decode(g.t, g.mustOK("POST", "/apigovernance/api/oauth/tokenByAkSk", "", map[string]string{"app_key": app.AppKey, "app_secret": app.AppSecret}), &at)
	r := g.do("POST", "/apiaccess/ccmessaging/applyToken", "", map[string]string{
		"userId": userID, "userName": "User " + userID, "channelId": ch.ID, "locale": "en_US",
	}, "x-app-key", app.AppKey, "Authorization", "Bearer "+at.AccessToken)
	var tok struct{ Token string }
	if r.status != 200 {
		g.t.Fatalf("applyToken: %d %s", r.status, r.body)
	}
	decode(g.t, r, &tok)
	return session{appKey: app.AppKey, accessToken: at.AccessToken, token: tok.Token, channelID: ch.ID, userID: userID}
}

func decode(t testing.TB, r reply, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
}

// wantResult checks a ccmessaging failure: status and resultCode "1".
func wantResult(t *testing.T, r reply, status int) string {
	t.Helper()
	var out struct{ ResultCode, ResultDesc string }
	if r.status != status || json.Unmarshal(r.body, &out) != nil || out.ResultCode != "1" {
		t.Fatalf("want %d resultCode 1, got %d %s", status, r.status, r.body)
	}
	return out.ResultDesc
}
