package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/pkg/client"
)

const rootPW = servertest.RootPassword

// startGatehouse runs a real server; mod adjusts its configuration.
func startGatehouse(t testing.TB, mod func(*server.Config)) string {
	t.Helper()
	return servertest.Start(t, mod).Base
}

// recorder is a transport that counts requests by "METHOD path" and
// answers by status.
type recorder struct {
	mu       sync.Mutex
	requests map[string]int
	statuses map[int]int
}

func newRecorder() *recorder {
	return &recorder{requests: map[string]int{}, statuses: map[int]int{}}
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests[req.Method+" "+req.URL.Path]++
	if err == nil {
		r.statuses[resp.StatusCode]++
	}
	return resp, err
}

func (r *recorder) count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[key]
}

func (r *recorder) status(code int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.statuses[code]
}

// get sends GET url through do and returns the status and body.
func get(t *testing.T, do func(*http.Request) (*http.Response, error), url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// admin sends a request with the root token and decodes the answer.
func admin(t *testing.T, root *client.Engine, method, url string, in, out any) {
	t.Helper()
	if err := adminCall(root, method, url, in, out); err != nil {
		t.Fatal(err)
	}
}

// adminCall sends a JSON request with the root token and decodes a 200
// answer into out (if not nil).
func adminCall(root *client.Engine, method, url string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := root.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, raw)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// TestEngine covers login on first use, one login for concurrent callers,
// re-login before expiry (2 s tokens) and after a 401.
func TestEngine(t *testing.T) {
	t.Parallel()
	base := startGatehouse(t, func(c *server.Config) { c.TokenTTL = 2 * time.Second })
	rec := newRecorder()
	e := client.NewEngine(client.EngineConfig{BaseURL: base + "/", Name: "root", Password: rootPW, HTTPClient: &http.Client{Transport: rec}})

	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if status, body := get(t, e.Do, base+"/v4/accounts"); status != 200 {
				t.Errorf("GET /v4/accounts: %d %s", status, body)
			}
		})
	}
	wg.Wait()
	if n := rec.count("POST /v4/token"); n != 1 {
		t.Fatalf("%d logins for concurrent first requests, want 1", n)
	}
	first, _ := e.Token(context.Background())

	// Past the refresh point (a tenth of the lifetime before exp) the
	// client logs in again before sending: no request meets a 401.
	time.Sleep(2 * time.Second)
	if status, _ := get(t, e.Do, base+"/v4/accounts"); status != 200 {
		t.Fatalf("after expiry: %d", status)
	}
	second, _ := e.Token(context.Background())
	if second == first || rec.count("POST /v4/token") != 2 || rec.status(401) != 0 {
		t.Fatalf("re-login before expiry: logins %d, 401s %d", rec.count("POST /v4/token"), rec.status(401))
	}

	// A token revoked behind the client's back: one 401, a login, a retry.
	req, _ := http.NewRequest("DELETE", base+"/v4/token", nil)
	req.Header.Set("Authorization", "Bearer "+second)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("logout: %v", err)
	}
	body := `{"name":"r1","perms":[]}`
	post, _ := http.NewRequest("POST", base+"/v4/roles", strings.NewReader(body))
	resp, err := e.Do(post)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("retry after 401: %v %v", resp, err)
	}
	resp.Body.Close()
	if rec.status(401) != 1 || rec.count("POST /v4/token") != 3 || rec.count("POST /v4/roles") != 2 {
		t.Fatalf("401s %d, logins %d, role posts %d", rec.status(401), rec.count("POST /v4/token"), rec.count("POST /v4/roles"))
	}

	// A body that cannot be replayed is not retried: the 401 is returned.
	third, _ := e.Token(context.Background())
	req, _ = http.NewRequest("DELETE", base+"/v4/token", nil)
	req.Header.Set("Authorization", "Bearer "+third)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("logout: %v", err)
	}
	once, _ := http.NewRequest("POST", base+"/v4/roles", io.NopCloser(strings.NewReader(`{"name":"r2","perms":[]}`)))
	if resp, err := e.Do(once); err != nil || resp.StatusCode != 401 {
		t.Fatalf("non-replayable body: %v %v", resp, err)
	}

	// The next request logs in again; Logout revokes that token.
	if status, _ := get(t, e.Do, base+"/v4/accounts"); status != 200 {
		t.Fatalf("after a 401 without retry: %d", status)
	}
	last, _ := e.Token(context.Background())
	if err := e.Logout(context.Background()); err != nil {
		t.Fatalf("logout: %v", err)
	}
	lastReq, _ := http.NewRequest("GET", base+"/v4/accounts", nil)
	lastReq.Header.Set("Authorization", "Bearer "+last)
	if resp, err := http.DefaultClient.Do(lastReq); err != nil || resp.StatusCode != 401 {
		t.Fatalf("a logged-out token: %v %v", resp, err)
	}
	bad := client.NewEngine(client.EngineConfig{BaseURL: base, Name: "root", Password: "wrong"})
	var ce *client.Error
	if _, err := bad.Token(context.Background()); !errors.As(err, &ce) || ce.Code != "401202" || ce.Status != 401 {
		t.Fatalf("wrong password: %v", err)
	}
}

// TestSession covers AccessToken caching and refresh (2 s AccessTokens),
// in-band renewal of ccmessaging-tokens (1 s), and re-applying after a
// 401.
func TestSession(t *testing.T) {
	t.Parallel()
	base := startGatehouse(t, func(c *server.Config) { c.CCMessagingTokenTTL = time.Second })
	root := client.NewEngine(client.EngineConfig{BaseURL: base, Name: "root", Password: rootPW})
	var app struct{ AppKey, AppSecret string }
	admin(t, root, "POST", base+"/v4/apps", map[string]string{"name": "web"}, &app)
	var ch struct{ ID string }
	admin(t, root, "POST", base+"/v4/channels", map[string]any{"name": "chat", "appKeys": []string{app.AppKey}}, &ch)

	rec := newRecorder()
	fabric := client.NewFabric(client.FabricConfig{
		BaseURL: base, AppKey: app.AppKey, AppSecret: app.AppSecret, Expire: 2 * time.Second,
		HTTPClient: &http.Client{Transport: rec},
	})
	s := fabric.Session(client.User{ID: "u1", Name: "User One", ChannelID: ch.ID, Locale: "en"})
	const sessionURL = "/apiaccess/ccmessaging/session"
	for range 3 {
		if status, body := get(t, s.Do, base+sessionURL); status != 200 || !strings.Contains(body, `"userId":"u1"`) {
			t.Fatalf("GET session: %d %s", status, body)
		}
	}
	if rec.count("POST /apigovernance/api/oauth/tokenByAkSk") != 1 || rec.count("POST /apiaccess/ccmessaging/applyToken") != 1 {
		t.Fatalf("credentials were not reused: %v", rec.requests)
	}
	first, _ := s.Token(context.Background())

	// Both tokens expire; the AccessToken is fetched again before use,
	// the ccmessaging-token is renewed in-band and adopted.
	time.Sleep(2100 * time.Millisecond)
	if status, body := get(t, s.Do, base+sessionURL); status != 200 {
		t.Fatalf("after expiry: %d %s", status, body)
	}
	renewed, _ := s.Token(context.Background())
	if renewed == first {
		t.Fatal("the renewed token was not adopted")
	}
	if rec.count("POST /apigovernance/api/oauth/tokenByAkSk") != 2 || rec.count("POST /apiaccess/ccmessaging/applyToken") != 1 || rec.status(401) != 0 {
		t.Fatalf("after expiry: %v %v", rec.requests, rec.statuses)
	}
	if status, _ := get(t, s.Do, base+sessionURL); status != 200 {
		t.Fatalf("with the adopted token: %d", status)
	}

	// The session ended by an admin: one 401, a new session, a retry.
	admin(t, root, "DELETE", base+"/v4/ccmessaging-sessions/"+ch.ID+"/u1", nil, nil)
	if status, body := get(t, s.Do, base+sessionURL); status != 200 {
		t.Fatalf("after the session ended: %d %s", status, body)
	}
	if rec.status(401) != 1 || rec.count("POST /apiaccess/ccmessaging/applyToken") != 2 {
		t.Fatalf("re-apply: %v %v", rec.requests, rec.statuses)
	}

	if err := s.End(context.Background()); err != nil {
		t.Fatalf("end: %v", err)
	}
	bad := client.NewFabric(client.FabricConfig{BaseURL: base, AppKey: app.AppKey, AppSecret: "wrong"})
	var ce *client.Error
	if _, err := bad.AccessToken(context.Background()); !errors.As(err, &ce) || ce.Code != "401501" {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := fabric.Session(client.User{ID: "u2", Name: "x", ChannelID: "nope", Locale: "en"}).Token(context.Background()); !errors.As(err, &ce) || ce.Status != 400 || ce.Code != "1" {
		t.Fatalf("unknown channel: %v", err)
	}
}
