package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpapi/gateway"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/internal/testclock"
	"github.com/gatehouse/gatehouse/pkg/client"
)

// logins counts the server's audit records of logins to name: succeeded
// and failed.
func logins(t *testing.T, srv *servertest.Server, name string) (ok, failed int) {
	t.Helper()
	records, err := client.NewAdmin(srv.Base, client.BearerToken(nil, srv.Root())).Audit(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range records {
		if r.Action == "login" && r.Target == name {
			if r.Outcome == "success" {
				ok++
			} else {
				failed++
			}
		}
	}
	return ok, failed
}

// wantLogins fails t unless the server counted ok and failed logins to
// name.
func wantLogins(t *testing.T, srv *servertest.Server, name string, ok, failed int) {
	t.Helper()
	if gotOK, gotFailed := logins(t, srv, name); gotOK != ok || gotFailed != failed {
		t.Fatalf("logins of %s: %d succeeded, %d failed; want %d, %d", name, gotOK, gotFailed, ok, failed)
	}
}

// TestEngineRelogin covers logging in again after the server refused the
// token: revoked by logout (20 concurrent requests, one login), expired
// on the server's clock, not for other 401s or for 403s, a second refusal
// returned as it is, and a password changed by another admin (20
// concurrent requests, one failed login, its error returned).
func TestEngineRelogin(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Now())
	var upstreamHits atomic.Int32
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"errorCode":"401201","errorMessage":"Request unauthorized","detail":"the upstream refuses"}`)
	}))
	t.Cleanup(refusing.Close)
	srv := servertest.Start(t, func(c *server.Config) {
		c.Now = clock.Now
		c.Routes = []gateway.Route{{Prefix: "/refusing/", Upstream: refusing.URL, Resource: "account", Verb: "get"}}
	})
	base, ctx := srv.Base, context.Background()
	rootAdmin := client.NewAdmin(base, client.BearerToken(nil, srv.Root()))
	if err := rootAdmin.CreateRole(ctx, "reader", []client.Permission{{
		Resources: []client.Resource{{Type: "account"}}, Verbs: []string{"get"},
	}}); err != nil {
		t.Fatal(err)
	}
	const pw = "Alice-Passw0rd!"
	if err := rootAdmin.CreateAccount(ctx, client.CreateAccount{Name: "alice", Password: pw, Roles: []string{"reader"}}); err != nil {
		t.Fatal(err)
	}

	rec := newRecorder()
	b := &barrier{next: rec}
	e := client.NewEngine(client.EngineConfig{BaseURL: base, Name: "alice", Password: pw, HTTPClient: &http.Client{Transport: b}})
	accounts := base + "/v4/accounts/alice"
	// concurrently runs f n times at once; the first n requests are held
	// until all have been sent, so all carry the same token.
	concurrently := func(n int, f func() error) []error {
		b.arm(n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { errs[i] = f() })
		}
		wg.Wait()
		return errs
	}
	getAccount := func() error {
		status, body := get(t, e.Do, accounts)
		if status != 200 {
			return errors.New(body)
		}
		return nil
	}
	if err := getAccount(); err != nil {
		t.Fatal(err)
	}
	wantLogins(t, srv, "alice", 1, 0)

	// Revoked by logout: 20 requests refused with the same token, one
	// login, every request retried and answered.
	tok, _ := e.Token(ctx)
	if err := client.Logout(ctx, nil, base, tok); err != nil {
		t.Fatal(err)
	}
	for _, err := range concurrently(20, getAccount) {
		if err != nil {
			t.Fatalf("after logout: %v", err)
		}
	}
	wantLogins(t, srv, "alice", 2, 0)
	if rec.status(401) != 20 {
		t.Fatalf("%d refusals, want 20", rec.status(401))
	}

	// Expired on the server's clock (the client's own clock still thinks
	// it fresh): 401205, one login, the retry is answered.
	clock.Advance(25 * time.Hour)
	if err := getAccount(); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	wantLogins(t, srv, "alice", 3, 0)
	if rec.status(401) != 21 {
		t.Fatalf("%d refusals, want 21", rec.status(401))
	}

	// Answers about the request, not the token: no login, no retry. A
	// wrong current password must not count twice toward lockout.
	rootAdmin = client.NewAdmin(base, client.BearerToken(nil, srv.Root()))
	var ce *client.Error
	aliceAdmin := client.NewAdmin(base, e)
	if err := aliceAdmin.ChangePassword(ctx, "alice", "Wrong-Passw0rd!", "Alice-Passw0rd!2"); !errors.As(err, &ce) || ce.Code != "401207" {
		t.Fatalf("wrong current password: %v", err)
	}
	if err := aliceAdmin.DeleteAccount(ctx, "nobody"); !errors.As(err, &ce) || ce.Code != "403205" {
		t.Fatalf("no permission: %v", err)
	}
	if n := rec.count("POST /v4/accounts/alice/password"); n != 1 {
		t.Fatalf("the password change was sent %d times", n)
	}
	wantLogins(t, srv, "alice", 3, 0)

	// Refused again after the login: the second refusal is the answer,
	// with its body.
	status, body := get(t, e.Do, base+"/refusing/x")
	if status != 401 || !strings.Contains(body, "the upstream refuses") || upstreamHits.Load() != 2 {
		t.Fatalf("refused twice: %d %s, upstream hits %d", status, body, upstreamHits.Load())
	}
	wantLogins(t, srv, "alice", 4, 0)

	// Revoked by another admin's password reset: the login fails; 20
	// concurrent refusals cost one failed login, and each caller gets its
	// error.
	if err := rootAdmin.ChangePassword(ctx, "alice", "", "Alice-Passw0rd!3"); err != nil {
		t.Fatal(err)
	}
	before := rec.count("POST /v4/token")
	for _, err := range concurrently(20, func() error {
		req, _ := http.NewRequest("GET", accounts, nil)
		resp, err := e.Do(req)
		if err == nil {
			resp.Body.Close()
			return errors.New(resp.Status)
		}
		return err
	}) {
		if !errors.As(err, &ce) || ce.Code != "401202" {
			t.Fatalf("after a password reset: %v", err)
		}
	}
	wantLogins(t, srv, "alice", 4, 1)
	if n := rec.count("POST /v4/token") - before; n != 1 {
		t.Fatalf("%d logins for 20 refused requests, want 1", n)
	}
	// No loop: the next request tries once more, and fails once more.
	if _, err := e.Do(mustRequest(t, accounts)); !errors.As(err, &ce) || ce.Code != "401202" {
		t.Fatalf("next request: %v", err)
	}
	wantLogins(t, srv, "alice", 4, 2)
}

func mustRequest(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// barrier holds the first n requests after arm(n) until all n have
// arrived, then sends them; later requests pass at once.
type barrier struct {
	next    http.RoundTripper
	mu      sync.Mutex
	left    int
	release chan struct{}
}

func (b *barrier) arm(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.left, b.release = n, make(chan struct{})
}

func (b *barrier) RoundTrip(req *http.Request) (*http.Response, error) {
	b.mu.Lock()
	release := b.release
	if b.left > 0 {
		if b.left--; b.left == 0 {
			close(release)
		}
	} else {
		release = nil
	}
	b.mu.Unlock()
	if release != nil {
		select {
		case <-release:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
	return b.next.RoundTrip(req)
}
