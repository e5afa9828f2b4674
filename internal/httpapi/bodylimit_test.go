package httpapi_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// bodyEndpoints are every endpoint of Gatehouse's own that reads a body.
var bodyEndpoints = []struct {
	method, path string
	ccm          bool // answers in the ccmessaging error model
}{
	{"POST", "/v4/token", false},
	{"POST", "/v4/accounts", false},
	{"POST", "/v4/accounts/batch-create", false},
	{"PUT", "/v4/accounts/someone", false},
	{"POST", "/v4/accounts/someone/password", false},
	{"POST", "/v4/roles", false},
	{"PUT", "/v4/roles/somerole", false},
	{"POST", "/v4/apps", false},
	{"PUT", "/v4/apps/someapp", false},
	{"POST", "/v4/apps/someapp/secret", false},
	{"POST", "/v4/channels", false},
	{"PUT", "/v4/channels/somechannel", false},
	{"POST", "/apigovernance/api/oauth/tokenByAkSk", false},
	{"POST", "/apiaccess/ccmessaging/applyToken", true},
}

// wantTooLarge checks a 413 in the endpoint's error model, after which
// the server closed the connection.
func wantTooLarge(t *testing.T, what string, r reply, closed, ccm bool) {
	t.Helper()
	if r.status != 413 {
		t.Fatalf("%s: status %d %s, want 413", what, r.status, r.body)
	}
	if ccm {
		var e struct{ ResultCode, ResultDesc string }
		if err := json.Unmarshal(r.body, &e); err != nil || e.ResultCode != "1" || e.ResultDesc == "" {
			t.Fatalf("%s: body %s, want the ccmessaging error model", what, r.body)
		}
	} else {
		wantErr(t, r, 413, "413001", "Request entity too large")
	}
	if !closed {
		t.Fatalf("%s: the connection stayed open after a 413", what)
	}
}

// TestOversizedBodyRefusedAtOnce checks that a request declaring a body
// over 64 KiB is answered 413 without waiting for the body, before
// authentication, and that a chunked body is cut at 64 KiB; the server
// closes the connection after either.
func TestOversizedBodyRefusedAtOnce(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	for _, ep := range bodyEndpoints {
		what := ep.method + " " + ep.path
		head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: gatehouse\r\nContent-Type: application/json\r\nContent-Length: 1000000000", ep.method, ep.path)
		r, closed := ts.Raw(head, nil)
		wantTooLarge(t, what+" declared 1 GB", reply{status: r.Status, header: r.Header, body: r.Body}, closed, ep.ccm)

		// Just over the limit, below what net/http discards by itself.
		head = fmt.Sprintf("%s %s HTTP/1.1\r\nHost: gatehouse\r\nContent-Length: %d", ep.method, ep.path, 64<<10+1)
		r, closed = ts.Raw(head, nil)
		wantTooLarge(t, what+" declared 64 KiB + 1", reply{status: r.Status, header: r.Header, body: r.Body}, closed, ep.ccm)
	}
	// /auth/verify reads no body and judges the request it names, whose
	// Content-Length a proxy may pass on.
	r, _ := ts.Raw("GET /auth/verify HTTP/1.1\r\nHost: gatehouse\r\nX-Original-URI: /v4/accounts\r\nContent-Length: 1000000000", nil)
	if r.Status != 401 {
		t.Fatalf("/auth/verify with a large Content-Length: %d %s, want 401", r.Status, r.Body)
	}
	// Chunked bodies are cut as they are read, once authenticated; the
	// last chunk is never sent.
	root := ts.root()
	chunk := strings.Repeat(" ", 64<<10+1)
	body := []byte(fmt.Sprintf("%x\r\n%s\r\n", len(chunk), chunk))
	for _, path := range []string{"/v4/accounts", "/v4/roles", "/v4/apps", "/v4/channels"} {
		head := "POST " + path + " HTTP/1.1\r\nHost: gatehouse\r\nAuthorization: Bearer " + root + "\r\nTransfer-Encoding: chunked"
		r, closed := ts.Raw(head, body)
		wantTooLarge(t, "chunked POST "+path, reply{status: r.Status, header: r.Header, body: r.Body}, closed, false)
	}
	head := "POST /v4/token HTTP/1.1\r\nHost: gatehouse\r\nTransfer-Encoding: chunked"
	r, closed := ts.Raw(head, body)
	wantTooLarge(t, "chunked POST /v4/token", reply{status: r.Status, header: r.Header, body: r.Body}, closed, false)
}
