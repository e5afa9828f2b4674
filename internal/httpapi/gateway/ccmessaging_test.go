package gateway_test

import (
	"net"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpapi/gateway"
	"github.com/gatehouse/gatehouse/internal/server"
)

const ccmPrefix = "/apiaccess/ccmessaging/"

// TestGatewayCCMessaging checks the three headers, the identity headers
// and that the consumed credentials and spoofed identities do not reach
// the upstream.
func TestGatewayCCMessaging(t *testing.T) {
	t.Parallel()
	up := newEcho(t)
	g := start(t, nil, gateway.Route{Prefix: ccmPrefix, Upstream: up.URL})
	s := g.openSession(g.root(), "alice")
	const path = ccmPrefix + "chat/messages"

	r := g.do("POST", path, "", `{"text":"hi"}`, append(s.headers(), "X-Gatehouse-User-Id", "mallory", "X-Gatehouse-Account", "root")...)
	proxied(t, r, path)
	if r.header.Get("ccmessaging-token") != "" {
		t.Error("a valid token was renewed")
	}
	seen := up.last(t)
	for h, want := range map[string]string{
		gateway.HeaderUserID:    "alice",
		gateway.HeaderChannelID: s.channelID,
		gateway.HeaderLocale:    "en_US",
		gateway.HeaderAppKey:    s.appKey,
		gateway.HeaderAccount:   "",
		"Authorization":         "",
		"X-App-Key":             "",
		"Ccmessaging-Token":     "",
	} {
		if got := seen.Header.Values(h); (want == "" && len(got) != 0) || (want != "" && (len(got) != 1 || got[0] != want)) {
			t.Errorf("upstream header %s = %q, want %q", h, got, want)
		}
	}
	if string(seen.Body) != `{"text":"hi"}` {
		t.Errorf("body %q", seen.Body)
	}

	// Each missing or wrong credential is refused before the upstream.
	before := up.count()
	for name, hdrs := range map[string][]string{
		"no token":     {"x-app-key", s.appKey, "Authorization", "Bearer " + s.accessToken},
		"no app key":   {"Authorization", "Bearer " + s.accessToken, "ccmessaging-token", s.token},
		"no access":    {"x-app-key", s.appKey, "ccmessaging-token", s.token},
		"forged token": {"x-app-key", s.appKey, "Authorization", "Bearer " + s.accessToken, "ccmessaging-token", s.token + "x"},
		"engine token": {"Authorization", "Bearer " + g.root()},
	} {
		t.Run(name, func(t *testing.T) {
			wantResult(t, g.do("GET", path, "", nil, hdrs...), 401)
		})
	}
	if up.count() != before {
		t.Fatal("a refused request reached the upstream")
	}

	// Gatehouse's own ccmessaging endpoints are not proxied.
	if r := g.do("GET", ccmPrefix+"session", "", nil, s.headers()...); r.status != 200 || up.count() != before {
		t.Fatalf("GET session: %d %s, upstream requests %d", r.status, r.body, up.count()-before)
	}
}

// TestGatewayCCMessagingRenewal checks that an expired token of a live
// session is renewed in-band and the new token relayed to the client, on
// an upstream's answer and on a gateway error alike, and by /auth/verify.
func TestGatewayCCMessagingRenewal(t *testing.T) {
	t.Parallel()
	up := newEcho(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	g := start(t, func(c *server.Config) { c.CCMessagingTokenTTL = time.Second },
		gateway.Route{Prefix: ccmPrefix, Upstream: up.URL},
		gateway.Route{Prefix: ccmPrefix + "down/", Upstream: down},
	)
	root := g.root()
	tests := []struct {
		path   string
		verify bool // ask /auth/verify about path instead
		status int
		s      session
	}{
		{path: ccmPrefix + "chat", status: 200, s: g.openSession(root, "bob")},
		{path: ccmPrefix + "down/x", status: 502, s: g.openSession(root, "carol")},
		{path: ccmPrefix + "chat", verify: true, status: 200, s: g.openSession(root, "dave")},
	}
	time.Sleep(2100 * time.Millisecond) // past the tokens' exp (whole seconds)
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			s := tc.s
			var r reply
			if tc.verify {
				r = g.do("GET", gateway.VerifyPath, "", nil, append(s.headers(), "X-Original-URI", tc.path)...)
			} else {
				r = g.do("GET", tc.path, "", nil, s.headers()...)
			}
			if r.status != tc.status {
				t.Fatalf("status %d %s", r.status, r.body)
			}
			renewed := r.header.Get("ccmessaging-token")
			if renewed == "" || renewed == s.token {
				t.Fatalf("no renewed token relayed: %q", renewed)
			}
			if tc.status == 200 && !tc.verify && up.last(t).Header.Get("Ccmessaging-Token") != "" {
				t.Fatal("the renewed token reached the upstream")
			}
			s.token = renewed
			r = g.do("GET", ccmPrefix+"session", "", nil, s.headers()...)
			if r.status != 200 || r.header.Get("ccmessaging-token") != "" {
				t.Fatalf("the renewed token: %d %q %s", r.status, r.header.Get("ccmessaging-token"), r.body)
			}
		})
	}
}
