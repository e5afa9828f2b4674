package httpapi_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/testclock"
)

func TestEngineHygiene(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	root := ts.root()
	ts.mkAccount(root, "hyg1", pw("h1"), "developer")
	ts.mkRole(root, "hygrole")

	t.Run("not found", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		for _, path := range []string{"/", "/nope", "/v4", "/v4/nope", "/v4/accounts/a/b/c", "/v4/tokens", "/.well-known/nope"} {
			for _, tok := range []string{"", root} {
				wantErr(t, ts.call("GET", path, tok, nil), 404, "404001", "Not found")
			}
		}
	})

	t.Run("method not allowed", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		for _, tc := range []struct{ method, path string }{
			{"GET", "/v4/token"},
			{"PUT", "/v4/token"},
			{"PATCH", "/v4/accounts"},
			{"DELETE", "/v4/accounts"},
			{"POST", "/v4/accounts/hyg1"},
			{"GET", "/v4/accounts/hyg1/password"},
			{"POST", "/v4/self-perms"},
			{"POST", "/v4/account-locks"},
			{"GET", "/v4/keys/rotate"},
			{"POST", "/healthz"},
			{"DELETE", "/readyz"},
			{"POST", "/.well-known/jwks.json"},
		} {
			r := ts.call(tc.method, tc.path, root, nil)
			wantErr(t, r, 405, "405001", "Method not allowed")
			if r.header.Get("Allow") == "" {
				t.Fatalf("%s %s: no Allow header", tc.method, tc.path)
			}
		}
	})

	t.Run("health", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		for _, path := range []string{"/healthz", "/readyz"} {
			r := ts.call("GET", path, "", nil)
			if r.status != 200 || string(r.body) != "ok" {
				t.Fatalf("%s: %d %q", path, r.status, r.body)
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		r := ts.call("GET", "/metrics", "", nil)
		wantStatus(t, r, 200)
		for _, name := range []string{"gatehouse_http_requests_total", "gatehouse_tokens_issued_total", "gatehouse_token_cache_lookups_total",
			"gatehouse_http_request_duration_seconds", `route="POST /v4/token"`} {
			if !strings.Contains(string(r.body), name) {
				t.Fatalf("metrics lack %s", name)
			}
		}
	})

	// Every /v4 endpoint that takes a body, with a body of the wrong JSON
	// type for one of its fields.
	bodies := []struct{ method, path, wrongType string }{
		{"POST", "/v4/token", `{"name":5,"password":"x"}`},
		{"POST", "/v4/accounts", `{"name":"x","password":"x","roles":"admin"}`},
		{"POST", "/v4/accounts/batch-create", `{"accounts":{"name":"x"}}`},
		{"PUT", "/v4/accounts/hyg1", `{"status":1}`},
		{"POST", "/v4/accounts/hyg1/password", `{"currentPassword":1,"password":"x"}`},
		{"POST", "/v4/roles", `{"name":"x","perms":[{"resources":"account","verbs":["get"]}]}`},
		{"PUT", "/v4/roles/hygrole", `{"perms":{}}`},
	}
	oversize := `{"name":"` + strings.Repeat("x", 64<<10) + `"}`
	for _, ep := range bodies {
		t.Run("body "+ep.method+" "+ep.path, func(t *testing.T) {
			t.Parallel()
			ts := ts.as(t)
			for _, body := range []string{oversize, strings.Repeat(" ", 64<<10+1)} {
				wantErr(t, ts.call(ep.method, ep.path, root, body), 413, "413001", "Request entity too large")
			}
			for _, body := range []string{"", "{", `{"name":}`, "null x", "[1,2", `{"name":"x"}}`, "\xff\xfe"} {
				wantErr(t, ts.call(ep.method, ep.path, root, body), 400, "400001", invalidParams)
			}
			e := wantErr(t, ts.call(ep.method, ep.path, root, ep.wrongType), 400, "400001", invalidParams)
			if !strings.HasPrefix(e.Detail, "field ") {
				t.Fatalf("wrong type detail %q does not name the field", e.Detail)
			}
			// A body of exactly the limit is read, then judged on its content.
			exact := `{"x":"` + strings.Repeat("y", 64<<10-8) + `"}`
			if len(exact) != 64<<10 {
				t.Fatalf("exact body is %d bytes", len(exact))
			}
			if r := ts.call(ep.method, ep.path, root, exact); r.status == 413 || r.status >= 500 {
				t.Fatalf("a body of exactly 64 KiB: %d %s", r.status, r.body)
			}
		})
	}
	t.Run("unknown fields are ignored", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		wantOK(t, ts.call("POST", "/v4/accounts", root, map[string]any{"name": "hyg2", "password": pw("h2"), "roles": []string{"developer"},
			"extra": map[string]any{"nested": []int{1}}, "password2": "x"}))
		wantOK(t, ts.call("PUT", "/v4/roles/hygrole", root, map[string]any{"perms": []any{}, "name": "renamed"}))
		ts.getRole(root, "hygrole")
	})
}

func TestEngineRateLimit(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Now())
	ts := start(t, func(c *server.Config) { c.RateLimit, c.RateBurst, c.Now = 0.5, 3, clock.Now })
	root := ts.root() // spends one of the burst
	for range 2 {
		wantErr(t, ts.call("POST", "/v4/token", "", "x"), 400, "400001", invalidParams)
	}
	r := ts.call("POST", "/v4/token", "", map[string]string{"name": "root", "password": rootPW})
	wantErr(t, r, 429, "429001", "Too many requests")
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	// Only the token-issuing endpoint is limited.
	for range 5 {
		wantStatus(t, ts.call("GET", "/v4/accounts", root, nil), 200)
		wantStatus(t, ts.call("GET", "/healthz", "", nil), 200)
	}
	// The bucket refills at the configured rate.
	clock.Advance(2 * time.Second)
	ts.root()
	wantErr(t, ts.call("POST", "/v4/token", "", "x"), 429, "429001", "Too many requests")
}
