package httpapi_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// pw is a password that meets the policy, distinct per suffix.
func pw(suffix string) string { return "Passw0rd!" + suffix }

// mkAccount creates an account with the caller's token, failing the test
// otherwise.
func (ts *testServer) mkAccount(tok, name, password string, roles ...string) {
	ts.t.Helper()
	r := ts.call("POST", "/v4/accounts", tok, map[string]any{"name": name, "password": password, "roles": roles})
	if r.status != 200 || len(r.body) != 0 {
		ts.t.Fatalf("create account %s: %d %s", name, r.status, r.body)
	}
}

// mkRole creates a role with the caller's token, failing the test otherwise.
func (ts *testServer) mkRole(tok, name string, perms ...map[string]any) {
	ts.t.Helper()
	if perms == nil {
		perms = []map[string]any{}
	}
	r := ts.call("POST", "/v4/roles", tok, map[string]any{"name": name, "perms": perms})
	if r.status != 200 || len(r.body) != 0 {
		ts.t.Fatalf("create role %s: %d %s", name, r.status, r.body)
	}
}

// perm is one Permission of the API.
func perm(verbs []string, types ...string) map[string]any {
	res := make([]map[string]any, len(types))
	for i, t := range types {
		res[i] = map[string]any{"type": t}
	}
	return map[string]any{"resources": res, "verbs": verbs}
}

// as returns a copy of ts whose requests report failures to t, so parallel
// subtests can share one server.
func (ts *testServer) as(t *testing.T) *testServer {
	c := *ts
	c.t = t
	return &c
}

// loginReply sends POST /v4/token for name and password.
func (ts *testServer) loginReply(name, password string, headers ...string) reply {
	ts.t.Helper()
	return ts.call("POST", "/v4/token", "", map[string]string{"name": name, "password": password}, headers...)
}

// wantStatus checks the status of a reply.
func wantStatus(t *testing.T, r reply, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("want %d, got %d %s", status, r.status, r.body)
	}
}

// wantDetail checks an error reply and its detail.
func wantDetail(t *testing.T, r reply, status int, code, msg, detail string) {
	t.Helper()
	if e := wantErr(t, r, status, code, msg); e.Detail != detail {
		t.Fatalf("want detail %q, got %q", detail, e.Detail)
	}
}

// tokenParts decodes the header and claims of a JWT without verifying it.
func tokenParts(t *testing.T, tok string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	dec := func(s string) map[string]any {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("token segment: %v", err)
		}
		m := map[string]any{}
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			t.Fatalf("token segment: %v", err)
		}
		return m
	}
	return dec(parts[0]), dec(parts[1])
}

// unixClaim returns a numeric claim as a time.
func unixClaim(t *testing.T, claims map[string]any, name string) time.Time {
	t.Helper()
	n, ok := claims[name].(json.Number)
	if !ok {
		t.Fatalf("claim %s is %T, want a number", name, claims[name])
	}
	v, err := n.Int64()
	if err != nil {
		t.Fatalf("claim %s: %v", name, err)
	}
	return time.Unix(v, 0)
}

// eventually polls cond every 50 ms for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
