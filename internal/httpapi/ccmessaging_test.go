package httpapi_test

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/server"
)

const (
	applyTokenPath = "/apiaccess/ccmessaging/applyToken"
	sessionPath    = "/apiaccess/ccmessaging/session"
)

// ccm is an app with an AccessToken and a channel open to it on a server.
type ccm struct {
	ts      *testServer
	root    string // engine token of root
	app     app
	access  string // AccessToken of app
	channel string // ID of a channel open to app
}

// newCCM creates an app and a channel with the given idle timeout ("" for
// the default) open to it.
func newCCM(ts *testServer, idle string) *ccm {
	ts.t.Helper()
	c := &ccm{ts: ts, root: ts.root()}
	c.app = ts.mkApp(c.root, "crm")
	c.access = ts.accessToken(c.app.AppKey, c.app.AppSecret)
	c.channel = c.mkChannel(idle, c.app.AppKey)
	return c
}

// as returns a copy of c whose requests report failures to t.
func (c *ccm) as(t *testing.T) *ccm {
	cp := *c
	cp.ts = c.ts.as(t)
	return &cp
}

// mkChannel creates a channel open to keys and returns its ID.
func (c *ccm) mkChannel(idle string, keys ...string) string {
	c.ts.t.Helper()
	body := map[string]any{"name": "web", "appKeys": keys}
	if idle != "" {
		body["sessionIdleTimeout"] = idle
	}
	r := c.ts.call("POST", "/v4/channels", c.root, body)
	if r.status != 200 {
		c.ts.t.Fatalf("create channel: %d %s", r.status, r.body)
	}
	var ch struct{ ID string }
	r.json(c.ts.t, &ch)
	return ch.ID
}

// applyReply sends applyToken with the app's credentials.
func (c *ccm) applyReply(body any) reply {
	c.ts.t.Helper()
	return c.ts.call("POST", applyTokenPath, "", body, "x-app-key", c.app.AppKey, "Authorization", "Bearer "+c.access)
}

// apply opens the session of user on the channel and returns its token.
func (c *ccm) apply(user string) string {
	c.ts.t.Helper()
	r := c.applyReply(map[string]string{"userId": user, "userName": "User " + user, "channelId": c.channel, "locale": "en_US"})
	if r.status != 200 {
		c.ts.t.Fatalf("applyToken: %d %s", r.status, r.body)
	}
	var out struct{ Token string }
	r.json(c.ts.t, &out)
	return out.Token
}

// session sends GET /apiaccess/ccmessaging/session with token.
func (c *ccm) session(token string) reply {
	c.ts.t.Helper()
	return c.ts.call("GET", sessionPath, "", nil, "x-app-key", c.app.AppKey, "Authorization", "Bearer "+c.access, "ccmessaging-token", token)
}

// sessionOK checks a 200 and returns the renewed token header ("" if none).
func (c *ccm) sessionOK(token string) string {
	c.ts.t.Helper()
	r := c.session(token)
	if r.status != 200 {
		c.ts.t.Fatalf("session: %d %s", r.status, r.body)
	}
	return r.header.Get("ccmessaging-token")
}

// ccmResult is the body of a ccmessaging answer.
type ccmResult struct {
	ResultCode string `json:"resultCode"`
	ResultDesc string `json:"resultDesc"`
}

// wantCCMError checks a ccmessaging failure: status, JSON body with
// resultCode "1" and a description.
func wantCCMError(t *testing.T, r reply, status int) ccmResult {
	t.Helper()
	var res ccmResult
	r.json(t, &res)
	if r.status != status || res.ResultCode != "1" || res.ResultDesc == "" {
		t.Fatalf("want %d resultCode 1, got %d %s", status, r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	return res
}

func TestCCMChannels(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	c := newCCM(ts, "")
	root := c.root

	type channel struct {
		ID                 string   `json:"id"`
		Name               string   `json:"name"`
		AppKeys            []string `json:"appKeys"`
		SessionIdleTimeout string   `json:"sessionIdleTimeout"`
		CreateTime         string   `json:"createTime"`
		UpdateTime         string   `json:"updateTime"`
	}
	get := func(t *testing.T, id string) channel {
		t.Helper()
		r := ts.as(t).call("GET", "/v4/channels/"+id, root, nil)
		wantStatus(t, r, 200)
		var ch channel
		r.json(t, &ch)
		return ch
	}

	t.Run("create", func(t *testing.T) {
		ts := ts.as(t)
		r := ts.call("POST", "/v4/channels", root, map[string]any{"id": "1234567890", "name": "web", "appKeys": []string{c.app.AppKey, c.app.AppKey}, "sessionIdleTimeout": "5m"})
		wantStatus(t, r, 200)
		var ch channel
		r.json(t, &ch)
		if ch.ID != "1234567890" || ch.Name != "web" || len(ch.AppKeys) != 1 || ch.AppKeys[0] != c.app.AppKey ||
			ch.SessionIdleTimeout != "5m" || !digitsRE.MatchString(ch.CreateTime) || !digitsRE.MatchString(ch.UpdateTime) {
			t.Fatalf("channel %s", r.body)
		}
		if got := get(t, c.channel); !digitsRE.MatchString(got.ID) || got.SessionIdleTimeout != "30m" {
			t.Fatalf("generated channel %+v", got)
		}
		list := ts.call("GET", "/v4/channels", root, nil)
		wantStatus(t, list, 200)
		var l struct {
			Total int       `json:"total"`
			Data  []channel `json:"data"`
		}
		list.json(t, &l)
		if l.Total != 2 || len(l.Data) != 2 {
			t.Fatalf("list %s", list.body)
		}
	})

	t.Run("update and delete", func(t *testing.T) {
		ts := ts.as(t)
		id := c.mkChannel("")
		r := ts.call("PUT", "/v4/channels/"+id, root, map[string]any{"name": "app", "appKeys": []string{c.app.AppKey}, "sessionIdleTimeout": "1h"})
		wantStatus(t, r, 200)
		if ch := get(t, id); ch.Name != "app" || len(ch.AppKeys) != 1 || ch.SessionIdleTimeout != "1h" {
			t.Fatalf("updated %+v", ch)
		}
		wantOK(t, ts.call("DELETE", "/v4/channels/"+id, root, nil))
		wantErr(t, ts.call("GET", "/v4/channels/"+id, root, nil), 404, "404001", "Not found")
		wantErr(t, ts.call("DELETE", "/v4/channels/"+id, root, nil), 404, "404001", "Not found")
	})

	t.Run("bad input", func(t *testing.T) {
		path := "/v4/channels/" + c.channel
		for _, tc := range []struct {
			name, method, path string
			body               any
			status             int
			code               string
		}{
			{"malformed JSON", "POST", "/v4/channels", `{"name":`, 400, "400001"},
			{"wrong type", "POST", "/v4/channels", `{"name":"a","appKeys":"x"}`, 400, "400001"},
			{"missing name", "POST", "/v4/channels", `{"appKeys":[]}`, 400, "400001"},
			{"id not digits", "POST", "/v4/channels", `{"id":"abc","name":"a"}`, 400, "400001"},
			{"id too long", "POST", "/v4/channels", `{"id":"` + strings.Repeat("1", 33) + `","name":"a"}`, 400, "400001"},
			{"duplicate id", "POST", "/v4/channels", `{"id":"` + c.channel + `","name":"a"}`, 400, "400001"},
			{"unknown app", "POST", "/v4/channels", `{"name":"a","appKeys":["nope"]}`, 400, "400001"},
			{"idle too short", "POST", "/v4/channels", `{"name":"a","sessionIdleTimeout":"500ms"}`, 400, "400001"},
			{"idle not a duration", "POST", "/v4/channels", `{"name":"a","sessionIdleTimeout":"forever"}`, 400, "400001"},
			{"oversize", "POST", "/v4/channels", `{"name":"` + strings.Repeat("a", 70<<10) + `"}`, 413, "413001"},
			{"update nothing", "PUT", path, `{}`, 400, "400001"},
			{"update wrong type", "PUT", path, `{"name":5}`, 400, "400001"},
			{"update unknown channel", "PUT", "/v4/channels/999", `{"name":"x"}`, 404, "404001"},
			{"get unknown channel", "GET", "/v4/channels/999", nil, 404, "404001"},
			{"wrong method", "PATCH", path, nil, 405, "405001"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantCode(t, ts.as(t).call(tc.method, tc.path, root, tc.body), tc.status, tc.code)
			})
		}
	})
}

func TestCCMApplyToken(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	c := newCCM(ts, "")
	other := ts.mkApp(c.root, "other")
	otherAccess := ts.accessToken(other.AppKey, other.AppSecret)
	closed := c.mkChannel("", other.AppKey)
	valid := map[string]string{"userId": "alice", "userName": "Alice", "channelId": c.channel, "locale": "zh"}
	with := func(field, value string) map[string]string {
		m := map[string]string{}
		for k, v := range valid {
			m[k] = v
		}
		if value == "<absent>" {
			delete(m, field)
		} else {
			m[field] = value
		}
		return m
	}

	t.Run("answer", func(t *testing.T) {
		r := c.as(t).applyReply(valid)
		wantStatus(t, r, 200)
		var m map[string]string
		r.json(t, &m)
		if len(m) != 3 || m["resultCode"] != "0" || m["resultDesc"] != "" || m["token"] == "" {
			t.Fatalf("answer %s", r.body)
		}
		header, claims := tokenParts(t, m["token"])
		if header["alg"] != "HS256" || claims["ch"] != c.channel || claims["uid"] != "alice" {
			t.Fatalf("token header %v claims %v", header, claims)
		}
		if exp := unixClaim(t, claims, "exp"); time.Until(exp) < 59*time.Minute || time.Until(exp) > 61*time.Minute {
			t.Fatalf("token expires %v, want in an hour", exp)
		}
	})

	t.Run("400", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			body any
		}{
			{"malformed JSON", `{"userId":`},
			{"empty body", ""},
			{"wrong type", `{"userId":1,"userName":"a","channelId":"1","locale":"en"}`},
			{"missing userId", with("userId", "<absent>")},
			{"missing userName", with("userName", "<absent>")},
			{"missing channelId", with("channelId", "<absent>")},
			{"missing locale", with("locale", "<absent>")},
			{"userId too long", with("userId", strings.Repeat("u", 33))},
			{"userId with a control character", with("userId", "al\tice")},
			{"userName too long", with("userName", strings.Repeat("n", 129))},
			{"unknown language", with("locale", "xx")},
			{"bad region", with("locale", "en_USA")},
			{"channel not found", with("channelId", "4242")},
			{"channel not open to the app", with("channelId", closed)},
		} {
			t.Run(tc.name, func(t *testing.T) { wantCCMError(t, c.as(t).applyReply(tc.body), 400) })
		}
		wantCCMError(t, c.applyReply(`{"userId":"`+strings.Repeat("a", 70<<10)+`"}`), 413)
	})

	t.Run("401", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			headers []string
		}{
			{"no x-app-key", []string{"Authorization", "Bearer " + c.access}},
			{"no Authorization", []string{"x-app-key", c.app.AppKey}},
			{"two spaces", []string{"x-app-key", c.app.AppKey, "Authorization", "Bearer  " + c.access}},
			{"other scheme", []string{"x-app-key", c.app.AppKey, "Authorization", "Basic " + c.access}},
			{"bad token", []string{"x-app-key", c.app.AppKey, "Authorization", "Bearer " + c.access[:len(c.access)-3] + "AAA"}},
			{"engine token", []string{"x-app-key", c.app.AppKey, "Authorization", "Bearer " + c.root}},
			{"token of another app", []string{"x-app-key", c.app.AppKey, "Authorization", "Bearer " + otherAccess}},
			{"x-app-key of another app", []string{"x-app-key", other.AppKey, "Authorization", "Bearer " + c.access}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantCCMError(t, ts.as(t).call("POST", applyTokenPath, "", valid, tc.headers...), 401)
			})
		}
	})

	t.Run("404 and 405", func(t *testing.T) {
		ts := ts.as(t)
		wantCCMError(t, ts.call("POST", "/apiaccess/ccmessaging/nope", "", valid), 404)
		wantCCMError(t, ts.call("GET", "/apiaccess/ccmessaging", "", nil), 404)
		wantCCMError(t, ts.call("POST", "/apiaccess/ccmessaging/applytoken", "", valid), 404)
		r := ts.call("GET", applyTokenPath, "", nil)
		wantCCMError(t, r, 405)
		if r.header.Get("Allow") != "POST" {
			t.Fatalf("Allow %q", r.header.Get("Allow"))
		}
		r = ts.call("PUT", sessionPath, "", nil)
		wantCCMError(t, r, 405)
		if r.header.Get("Allow") != "DELETE, GET" {
			t.Fatalf("Allow %q", r.header.Get("Allow"))
		}
	})
}

func TestCCMSession(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	c := newCCM(ts, "")
	tok := c.apply("alice")

	t.Run("answer", func(t *testing.T) {
		r := c.as(t).session(tok)
		wantStatus(t, r, 200)
		var m map[string]any
		r.json(t, &m)
		if len(m) != 7 || m["resultCode"] != "0" || m["userId"] != "alice" || m["userName"] != "User alice" ||
			m["channelId"] != c.channel || m["locale"] != "en_US" {
			t.Fatalf("answer %s", r.body)
		}
		exp, sessExp := m["expiresAt"].(float64), m["sessionExpiresAt"].(float64)
		now := float64(time.Now().Unix())
		if exp < now+3500 || exp > now+3700 || sessExp < now+1790 || sessExp > now+1810 {
			t.Fatalf("expiresAt %v sessionExpiresAt %v at %v", exp, sessExp, now)
		}
		if r.header.Get("ccmessaging-token") != "" {
			t.Fatal("a valid token was renewed")
		}
	})

	t.Run("401", func(t *testing.T) {
		other := ts.mkApp(c.root, "other")
		otherAccess := ts.accessToken(other.AppKey, other.AppSecret)
		for _, tc := range []struct {
			name    string
			headers []string
		}{
			{"no ccmessaging-token", []string{"x-app-key", c.app.AppKey, "Authorization", "Bearer " + c.access}},
			{"no x-app-key", []string{"Authorization", "Bearer " + c.access, "ccmessaging-token", tok}},
			{"no Authorization", []string{"x-app-key", c.app.AppKey, "ccmessaging-token", tok}},
			{"bad ccmessaging-token", []string{"x-app-key", c.app.AppKey, "Authorization", "Bearer " + c.access, "ccmessaging-token", tok + "x"}},
			{"AccessToken as ccmessaging-token", []string{"x-app-key", c.app.AppKey, "Authorization", "Bearer " + c.access, "ccmessaging-token", c.access}},
			{"session of another app", []string{"x-app-key", other.AppKey, "Authorization", "Bearer " + otherAccess, "ccmessaging-token", tok}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantCCMError(t, ts.as(t).call("GET", sessionPath, "", nil, tc.headers...), 401)
			})
		}
	})

	t.Run("superseding applyToken", func(t *testing.T) {
		c := c.as(t)
		first := c.apply("bob")
		c.sessionOK(first)
		second := c.apply("bob")
		wantCCMError(t, c.session(first), 401)
		c.sessionOK(second)
	})

	t.Run("end by the user", func(t *testing.T) {
		c := c.as(t)
		tok := c.apply("carol")
		r := c.ts.call("DELETE", sessionPath, "", nil, "x-app-key", c.app.AppKey, "Authorization", "Bearer "+c.access, "ccmessaging-token", tok)
		wantStatus(t, r, 200)
		if string(r.body) != `{"resultCode":"0"}` {
			t.Fatalf("answer %s", r.body)
		}
		wantCCMError(t, c.session(tok), 401)
	})

	t.Run("app deactivated", func(t *testing.T) {
		c := c.as(t)
		a := c.ts.mkApp(c.root, "short-lived")
		wantStatus(t, c.ts.call("PUT", "/v4/channels/"+c.channel, c.root, map[string]any{"appKeys": []string{c.app.AppKey, a.AppKey}}), 200)
		d := *c
		d.app, d.access = a, c.ts.accessToken(a.AppKey, a.AppSecret)
		tok := d.apply("dave")
		d.sessionOK(tok)
		wantStatus(t, c.ts.call("PUT", "/v4/apps/"+a.AppKey, c.root, map[string]string{"status": "inactive"}), 200)
		if res := wantCCMError(t, d.session(tok), 401); res.ResultDesc != "app inactive" {
			t.Fatalf("resultDesc %q", res.ResultDesc)
		}
	})

	t.Run("secret rotation cuts tokens after the grace", func(t *testing.T) {
		c := c.as(t)
		tok := c.apply("erin")
		wantStatus(t, c.ts.call("POST", "/v4/apps/"+c.app.AppKey+"/secret", c.root, map[string]int{"graceSeconds": 1}), 200)
		c.sessionOK(tok) // within the grace
		eventually(t, "the rotated-out AccessToken to be refused", func() bool { return c.session(tok).status == 401 })
		if res := wantCCMError(t, c.session(tok), 401); res.ResultDesc != "token revoked" {
			t.Fatalf("resultDesc %q", res.ResultDesc)
		}
	})
}

func TestCCMAccessTokenExpiry(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	c := newCCM(ts, "")
	c.access = ts.accessToken(c.app.AppKey, c.app.AppSecret, "X-Token-Expire", "1")
	tok := c.apply("alice")
	start := time.Now()
	eventually(t, "the AccessToken to expire", func() bool { return c.session(tok).status == 401 })
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Fatalf("a 1 s AccessToken worked for %v", d)
	}
	if res := wantCCMError(t, c.session(tok), 401); res.ResultDesc != "Access token is expired" {
		t.Fatalf("resultDesc %q", res.ResultDesc)
	}
}

func TestCCMAdminSessions(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	c := newCCM(ts, "")
	alice, bob := c.apply("alice"), c.apply("b/ob")
	other := c.mkChannel("", c.app.AppKey)

	type info struct {
		ChannelID        string `json:"channelId"`
		UserID           string `json:"userId"`
		UserName         string `json:"userName"`
		Locale           string `json:"locale"`
		AppKey           string `json:"appKey"`
		CreateTime       string `json:"createTime"`
		LastActivityTime string `json:"lastActivityTime"`
		ExpiresAt        int64  `json:"expiresAt"`
		SessionExpiresAt int64  `json:"sessionExpiresAt"`
	}
	list := func(t *testing.T, query string) []info {
		t.Helper()
		r := ts.as(t).call("GET", "/v4/ccmessaging-sessions"+query, c.root, nil)
		wantStatus(t, r, 200)
		if strings.Contains(string(r.body), alice) || strings.Contains(string(r.body), bob) {
			t.Fatal("session list shows a token")
		}
		var l struct {
			Total int    `json:"total"`
			Data  []info `json:"data"`
		}
		r.json(t, &l)
		if l.Total != len(l.Data) {
			t.Fatalf("total %d for %d sessions", l.Total, len(l.Data))
		}
		return l.Data
	}

	all := list(t, "")
	if len(all) != 2 || all[0].UserID != "alice" || all[1].UserID != "b/ob" {
		t.Fatalf("sessions %+v", all)
	}
	s := all[0]
	if s.ChannelID != c.channel || s.UserName != "User alice" || s.Locale != "en_US" || s.AppKey != c.app.AppKey ||
		!digitsRE.MatchString(s.CreateTime) || !digitsRE.MatchString(s.LastActivityTime) ||
		s.ExpiresAt <= time.Now().Unix() || s.SessionExpiresAt <= time.Now().Unix() {
		t.Fatalf("session %+v", s)
	}
	if got := list(t, "?userId=b/ob"); len(got) != 1 || got[0].UserID != "b/ob" {
		t.Fatalf("filtered by user: %+v", got)
	}
	if got := list(t, "?channelId="+other); len(got) != 0 {
		t.Fatalf("filtered by channel: %+v", got)
	}

	wantOK(t, ts.call("DELETE", "/v4/ccmessaging-sessions/"+c.channel+"/b/ob", c.root, nil))
	wantCCMError(t, c.session(bob), 401)
	c.sessionOK(alice)
	wantErr(t, ts.call("DELETE", "/v4/ccmessaging-sessions/"+c.channel+"/b/ob", c.root, nil), 404, "404001", "Not found")
	if got := list(t, ""); len(got) != 1 {
		t.Fatalf("after the kill: %+v", got)
	}
	wantErr(t, ts.call("GET", "/v4/ccmessaging-sessions", "", nil), 401, "401204", "No authorization header")
}

func TestCCMIdleTimeout(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	c := newCCM(ts, "1s")
	tok := c.apply("alice")
	for range 3 { // requests keep the session alive past its idle timeout
		time.Sleep(500 * time.Millisecond)
		c.sessionOK(tok)
	}
	time.Sleep(1200 * time.Millisecond) // no request: the session idles out
	if res := wantCCMError(t, c.session(tok), 401); res.ResultDesc != "session ended: idle timeout" {
		t.Fatalf("resultDesc %q", res.ResultDesc)
	}
}

func TestCCMRestartKeepsSessions(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	c := newCCM(ts, "")
	tok := c.apply("alice")
	c.sessionOK(tok)
	ts.restart()
	if renewed := c.sessionOK(tok); renewed != "" {
		t.Fatal("restart renewed a valid token")
	}
}

// shortTokens starts a server whose ccmessaging-tokens live one second.
func shortTokens(t *testing.T, grace time.Duration) *ccm {
	ts := start(t, func(cfg *server.Config) {
		cfg.CCMessagingTokenTTL = time.Second
		cfg.CCMessagingRenewGrace = grace
	})
	return newCCM(ts, "")
}

// sleepPast sleeps until the token's exp has passed.
func sleepPast(t *testing.T, tok string) {
	_, claims := tokenParts(t, tok)
	time.Sleep(time.Until(unixClaim(t, claims, "exp")) + 20*time.Millisecond)
}

func TestCCMRenewal(t *testing.T) {
	t.Parallel()
	c := shortTokens(t, time.Second)
	old := c.apply("alice")
	if c.sessionOK(old) != "" {
		t.Fatal("a valid token was renewed")
	}
	sleepPast(t, old)
	renewed := c.sessionOK(old)
	if renewed == "" || renewed == old {
		t.Fatal("an expired token of a live session was not renewed")
	}
	if again := c.sessionOK(old); again != renewed {
		t.Fatal("the superseded token within its grace did not answer the renewed token")
	}
	if c.sessionOK(renewed) != "" {
		t.Fatal("the renewed token was renewed again at once")
	}
	eventually(t, "the superseded token to be refused after the grace", func() bool { return c.session(old).status == 401 })
	wantCCMError(t, c.session(old), 401)
	c.sessionOK(renewed)
}

// TestCCMSessionsEndForGood checks the exact answer to a session token
// whose app was deactivated and reactivated, or removed from the channel
// and added again: 401 and the cause, also once the token has expired
// (no in-band renewal, no ccmessaging-token header), while a new
// applyToken opens a working session.
func TestCCMSessionsEndForGood(t *testing.T) {
	t.Parallel()
	ts := shortTokens(t, time.Second).ts
	for _, tc := range []struct {
		name string
		user string
		end  func(c *ccm)
		body string
	}{
		{"app deactivated and reactivated", "alice", func(c *ccm) {
			for _, status := range []string{"inactive", "active"} {
				wantStatus(c.ts.t, c.ts.call("PUT", "/v4/apps/"+c.app.AppKey, c.root, map[string]string{"status": status}), 200)
			}
			c.access = c.ts.accessToken(c.app.AppKey, c.app.AppSecret)
		}, `{"resultCode":"1","resultDesc":"session ended: app deactivated"}`},
		{"app removed from the channel and added again", "bob", func(c *ccm) {
			for _, keys := range [][]string{{}, {c.app.AppKey}} {
				wantStatus(c.ts.t, c.ts.call("PUT", "/v4/channels/"+c.channel, c.root, map[string]any{"appKeys": keys}), 200)
			}
		}, `{"resultCode":"1","resultDesc":"session ended: channel no longer open to the app"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCCM(ts.as(t), "")
			wantEnded := func(tok string) {
				t.Helper()
				r := c.session(tok)
				wantCCMError(t, r, 401)
				if string(r.body) != tc.body || r.header.Get("ccmessaging-token") != "" {
					t.Fatalf("got %s (ccmessaging-token header %v), want %s", r.body, r.header.Get("ccmessaging-token") != "", tc.body)
				}
			}
			old := c.apply(tc.user)
			c.sessionOK(old)
			tc.end(c)
			wantEnded(old)
			sleepPast(t, old) // expired: a live session would renew it in-band
			wantEnded(old)
			c.sessionOK(c.apply(tc.user))
		})
	}
}

// TestCCMRenewalRace sends the same expired token many times at once, for
// many sessions: every request succeeds and all get the same new token.
func TestCCMRenewalRace(t *testing.T) {
	t.Parallel()
	c := shortTokens(t, 5*time.Second)
	const sessions, parallel = 20, 12
	tokens := make([]string, sessions)
	for i := range tokens {
		tokens[i] = c.apply("user" + strconv.Itoa(i))
	}
	sleepPast(t, tokens[len(tokens)-1])
	for i, tok := range tokens {
		var wg sync.WaitGroup
		statuses := make([]int, parallel)
		renewed := make([]string, parallel)
		for j := range parallel {
			wg.Go(func() {
				req, _ := http.NewRequest("GET", c.ts.Base+sessionPath, nil)
				req.Header.Set("x-app-key", c.app.AppKey)
				req.Header.Set("Authorization", "Bearer "+c.access)
				req.Header.Set("ccmessaging-token", tok)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return
				}
				resp.Body.Close()
				statuses[j], renewed[j] = resp.StatusCode, resp.Header.Get("ccmessaging-token")
			})
		}
		wg.Wait()
		for j := range parallel {
			if statuses[j] != 200 || renewed[j] == "" || renewed[j] != renewed[0] {
				t.Fatalf("session %d request %d: status %d, renewed token %q, first %q", i, j, statuses[j], renewed[j], renewed[0])
			}
		}
		if c.sessionOK(renewed[0]) != "" {
			t.Fatalf("session %d: the new token is not live", i)
		}
	}
}
