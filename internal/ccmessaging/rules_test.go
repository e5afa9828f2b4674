package ccmessaging_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/apifabric"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/ccmessaging"
	"github.com/gatehouse/gatehouse/internal/testclock"
)

// The rules of channels, applyToken, session lifetimes and in-band
// renewal, tested on the service itself; the HTTP tests keep what is wire
// (status codes, resultCode bodies, the renewal header).

var rootCaller = authz.Caller{Account: "root"}

// wantUnauthorized checks a 401201 with the given detail.
func wantUnauthorized(t *testing.T, err error, detail string) {
	t.Helper()
	ae, ok := apierror.As(err)
	if !ok || !errors.Is(err, apierror.Unauthorized) || ae.Detail != detail {
		t.Fatalf("want 401201 %q, got %v", detail, err)
	}
}

// otherApp creates a second app on r and returns its credentials.
func otherApp(t *testing.T, r *replica) ccmessaging.Credentials {
	t.Helper()
	ctx := context.Background()
	app, err := r.fabric.CreateApp(ctx, rootCaller, apifabric.CreateAppRequest{Name: "other"})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := r.fabric.TokenByAkSk(ctx, apifabric.TokenRequest{AppKey: app.AppKey, AppSecret: app.AppSecret}, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return ccmessaging.Credentials{AppKey: app.AppKey, Authorization: "Bearer " + tok.AccessToken, IP: "127.0.0.1"}
}

// TestApplyTokenRules covers the fields of applyToken and the channel it
// names: it must exist and be open to the calling app. A refused request
// opens no session.
func TestApplyTokenRules(t *testing.T) {
	r := newReplica(t, openStore(t), testclock.New(time.Now()), nil)
	cr, channelID := setup(t, r)
	ctx := context.Background()
	other := otherApp(t, r)
	closed, err := r.msg.CreateChannel(ctx, rootCaller, ccmessaging.ChannelRequest{Name: "closed", AppKeys: []string{other.AppKey}})
	if err != nil {
		t.Fatal(err)
	}
	app, err := r.msg.VerifyApp(cr.AppKey, cr.Authorization)
	if err != nil {
		t.Fatal(err)
	}
	valid := ccmessaging.ApplyRequest{UserID: "alice", UserName: "Alice", ChannelID: channelID, Locale: "zh"}
	for _, tc := range []struct {
		name string
		mod  func(*ccmessaging.ApplyRequest)
		ok   bool
	}{
		{"valid", func(*ccmessaging.ApplyRequest) {}, true},
		{"empty userId", func(q *ccmessaging.ApplyRequest) { q.UserID = "" }, false},
		{"32-character userId", func(q *ccmessaging.ApplyRequest) { q.UserID = strings.Repeat("u", 32) }, true},
		{"33-character userId", func(q *ccmessaging.ApplyRequest) { q.UserID = strings.Repeat("u", 33) }, false},
		{"32 characters of more bytes", func(q *ccmessaging.ApplyRequest) { q.UserID = strings.Repeat("ü", 32) }, true},
		{"userId with a tab", func(q *ccmessaging.ApplyRequest) { q.UserID = "al\tice" }, false},
		{"userId not UTF-8", func(q *ccmessaging.ApplyRequest) { q.UserID = "al\xffice" }, false},
		{"userId with a slash", func(q *ccmessaging.ApplyRequest) { q.UserID = "b/ob" }, true},
		{"empty userName", func(q *ccmessaging.ApplyRequest) { q.UserName = "" }, false},
		{"128-character userName", func(q *ccmessaging.ApplyRequest) { q.UserName = strings.Repeat("n", 128) }, true},
		{"129-character userName", func(q *ccmessaging.ApplyRequest) { q.UserName = strings.Repeat("n", 129) }, false},
		{"userName with a newline", func(q *ccmessaging.ApplyRequest) { q.UserName = "A\nB" }, false},
		{"empty channelId", func(q *ccmessaging.ApplyRequest) { q.ChannelID = "" }, false},
		{"unknown channel", func(q *ccmessaging.ApplyRequest) { q.ChannelID = "4242" }, false},
		{"channel not open to the app", func(q *ccmessaging.ApplyRequest) { q.ChannelID = closed.ID }, false},
		{"empty locale", func(q *ccmessaging.ApplyRequest) { q.Locale = "" }, false},
		{"unknown language", func(q *ccmessaging.ApplyRequest) { q.Locale = "xx" }, false},
		{"three-letter region", func(q *ccmessaging.ApplyRequest) { q.Locale = "en_USA" }, false},
		{"empty region", func(q *ccmessaging.ApplyRequest) { q.Locale = "en_" }, false},
		{"language and region", func(q *ccmessaging.ApplyRequest) { q.Locale = "en_US" }, true},
		{"dash and lower-case region", func(q *ccmessaging.ApplyRequest) { q.Locale = "zh-cn" }, true},
		{"numeric region", func(q *ccmessaging.ApplyRequest) { q.Locale = "es_419" }, true},
		{"upper-case language", func(q *ccmessaging.ApplyRequest) { q.Locale = "EN" }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := valid
			tc.mod(&req)
			before := len(r.msg.Sessions("", ""))
			tok, err := r.msg.ApplyToken(ctx, app, req, cr.IP)
			if !tc.ok {
				if !errors.Is(err, apierror.InvalidParams) {
					t.Fatalf("want 400001, got %v", err)
				}
				if n := len(r.msg.Sessions("", "")); n != before {
					t.Fatalf("a refused request opened a session: %d sessions, was %d", n, before)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := cr
			c.Token = tok
			id, renewed, err := r.msg.Verify(ctx, c)
			if err != nil || renewed != "" || id.UserID != req.UserID || id.UserName != req.UserName ||
				id.ChannelID != req.ChannelID || id.Locale != req.Locale || id.AppKey != cr.AppKey {
				t.Fatalf("session %+v, renewed %v, %v; want the request's fields", id, renewed != "", err)
			}
		})
	}
}

// TestChannelRules covers channel IDs (1 to 32 digits, generated when
// absent, unique), names, idle timeouts (1s to 24h, 30m by default) and
// app lists (existing apps, at most 100, kept once), on create and update.
// A refused change stores nothing.
func TestChannelRules(t *testing.T) {
	r := newReplica(t, openStore(t), testclock.New(time.Now()), nil)
	cr, taken := setup(t, r)
	ctx := context.Background()
	key := cr.AppKey
	repeat := func(k string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = k
		}
		return out
	}

	t.Run("create", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			req      ccmessaging.ChannelRequest
			ok       bool
			wantIdle string
			wantKeys int
		}{
			{"defaults", ccmessaging.ChannelRequest{Name: "web"}, true, "30m", 0},
			{"digits", ccmessaging.ChannelRequest{ID: "123", Name: "web"}, true, "30m", 0},
			{"32 digits", ccmessaging.ChannelRequest{ID: strings.Repeat("9", 32), Name: "web"}, true, "30m", 0},
			{"33 digits", ccmessaging.ChannelRequest{ID: strings.Repeat("9", 33), Name: "web"}, false, "", 0},
			{"letters", ccmessaging.ChannelRequest{ID: "12a", Name: "web"}, false, "", 0},
			{"sign", ccmessaging.ChannelRequest{ID: "-1", Name: "web"}, false, "", 0},
			{"duplicate", ccmessaging.ChannelRequest{ID: taken, Name: "web"}, false, "", 0},
			{"empty name", ccmessaging.ChannelRequest{Name: ""}, false, "", 0},
			{"64-character name", ccmessaging.ChannelRequest{Name: strings.Repeat("n", 64)}, true, "30m", 0},
			{"65-character name", ccmessaging.ChannelRequest{Name: strings.Repeat("n", 65)}, false, "", 0},
			{"name with a newline", ccmessaging.ChannelRequest{Name: "a\nb"}, false, "", 0},
			{"idle 999ms", ccmessaging.ChannelRequest{Name: "i", SessionIdleTimeout: "999ms"}, false, "", 0},
			{"idle 1s", ccmessaging.ChannelRequest{Name: "i", SessionIdleTimeout: "1s"}, true, "1s", 0},
			{"idle 24h", ccmessaging.ChannelRequest{Name: "i", SessionIdleTimeout: "24h"}, true, "24h", 0},
			{"idle over 24h", ccmessaging.ChannelRequest{Name: "i", SessionIdleTimeout: "24h0m1s"}, false, "", 0},
			{"negative idle", ccmessaging.ChannelRequest{Name: "i", SessionIdleTimeout: "-1m"}, false, "", 0},
			{"idle not a duration", ccmessaging.ChannelRequest{Name: "i", SessionIdleTimeout: "forever"}, false, "", 0},
			{"unknown app", ccmessaging.ChannelRequest{Name: "a", AppKeys: []string{key, "nope"}}, false, "", 0},
			{"an app twice", ccmessaging.ChannelRequest{Name: "a", AppKeys: []string{key, key}}, true, "30m", 1},
			{"100 app keys", ccmessaging.ChannelRequest{Name: "a", AppKeys: repeat(key, 100)}, true, "30m", 1},
			{"101 app keys", ccmessaging.ChannelRequest{Name: "a", AppKeys: repeat(key, 101)}, false, "", 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := len(r.msg.ListChannels())
				ch, err := r.msg.CreateChannel(ctx, rootCaller, tc.req)
				if !tc.ok {
					if !errors.Is(err, apierror.InvalidParams) {
						t.Fatalf("want 400001, got %v", err)
					}
					if n := len(r.msg.ListChannels()); n != before {
						t.Fatalf("a refused channel was stored: %d channels, was %d", n, before)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if tc.req.ID == "" && !regexp.MustCompile(`^[1-9][0-9]{17}$`).MatchString(ch.ID) {
					t.Fatalf("generated ID %q is not 18 digits", ch.ID)
				}
				if (tc.req.ID != "" && ch.ID != tc.req.ID) || ch.Name != tc.req.Name || ch.SessionIdleTimeout != tc.wantIdle || len(ch.AppKeys) != tc.wantKeys {
					t.Fatalf("created %+v", ch)
				}
				if got, err := r.msg.GetChannel(ch.ID); err != nil || got.Name != ch.Name {
					t.Fatalf("stored %+v, %v", got, err)
				}
			})
		}
	})

	t.Run("update", func(t *testing.T) {
		str := func(s string) *string { return &s }
		none := []string{}
		for _, tc := range []struct {
			name string
			req  ccmessaging.UpdateChannelRequest
			ok   bool
		}{
			{"nothing", ccmessaging.UpdateChannelRequest{}, false},
			{"empty name", ccmessaging.UpdateChannelRequest{Name: str("")}, false},
			{"65-character name", ccmessaging.UpdateChannelRequest{Name: str(strings.Repeat("n", 65))}, false},
			{"idle too short", ccmessaging.UpdateChannelRequest{SessionIdleTimeout: str("500ms")}, false},
			{"idle not a duration", ccmessaging.UpdateChannelRequest{SessionIdleTimeout: str("")}, false},
			{"unknown app", ccmessaging.UpdateChannelRequest{AppKeys: &[]string{"nope"}}, false},
			{"101 app keys", ccmessaging.UpdateChannelRequest{AppKeys: func() *[]string { k := repeat(key, 101); return &k }()}, false},
			{"good name with a bad idle", ccmessaging.UpdateChannelRequest{Name: str("x"), SessionIdleTimeout: str("1ms")}, false},
			{"name", ccmessaging.UpdateChannelRequest{Name: str("renamed")}, true},
			{"idle", ccmessaging.UpdateChannelRequest{SessionIdleTimeout: str("5m")}, true},
			{"no apps", ccmessaging.UpdateChannelRequest{AppKeys: &none}, true},
			{"an app twice", ccmessaging.UpdateChannelRequest{AppKeys: &[]string{key, key}}, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before, err := r.msg.GetChannel(taken)
				if err != nil {
					t.Fatal(err)
				}
				got, err := r.msg.UpdateChannel(ctx, rootCaller, taken, tc.req)
				after, _ := r.msg.GetChannel(taken)
				if !tc.ok {
					if !errors.Is(err, apierror.InvalidParams) {
						t.Fatalf("want 400001, got %v", err)
					}
					if after.Name != before.Name || after.SessionIdleTimeout != before.SessionIdleTimeout || len(after.AppKeys) != len(before.AppKeys) {
						t.Fatalf("refused update changed %+v to %+v", before, after)
					}
					return
				}
				if err != nil || got.Name != after.Name || got.SessionIdleTimeout != after.SessionIdleTimeout {
					t.Fatalf("update answered %+v, %v; stored %+v", got, err, after)
				}
				switch {
				case tc.req.Name != nil && after.Name != *tc.req.Name,
					tc.req.SessionIdleTimeout != nil && after.SessionIdleTimeout != *tc.req.SessionIdleTimeout,
					tc.req.AppKeys != nil && len(after.AppKeys) != min(len(*tc.req.AppKeys), 1): // every key here is the one app's
					t.Fatalf("updated %+v with %+v", after, tc.req)
				}
			})
		}
	})

	t.Run("unknown channel", func(t *testing.T) {
		name := "x"
		_, err := r.msg.UpdateChannel(ctx, rootCaller, "999", ccmessaging.UpdateChannelRequest{Name: &name})
		if !errors.Is(err, apierror.NotFound) {
			t.Fatalf("update: want 404001, got %v", err)
		}
		if _, err := r.msg.GetChannel("999"); !errors.Is(err, apierror.NotFound) {
			t.Fatalf("get: want 404001, got %v", err)
		}
		if err := r.msg.DeleteChannel(ctx, rootCaller, "999"); !errors.Is(err, apierror.NotFound) {
			t.Fatalf("delete: want 404001, got %v", err)
		}
	})
}

// TestIdleTimeoutRules covers the idle timeout: a session ends once its
// channel's timeout passes without a request, each request starts the
// timeout again, and a changed timeout applies from the next request on.
func TestIdleTimeoutRules(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		idle   string
		change string          // the channel's new timeout after the session opened; "" for none
		gaps   []time.Duration // between the requests after applyToken
		ended  bool            // at the last request
	}{
		{"just before the timeout", "1m", "", []time.Duration{time.Minute - time.Millisecond}, false},
		{"at the timeout", "1m", "", []time.Duration{time.Minute}, true},
		{"requests keep it alive", "1m", "", []time.Duration{50 * time.Second, 50 * time.Second, 50 * time.Second}, false},
		{"idle after requests", "1m", "", []time.Duration{50 * time.Second, 50 * time.Second, time.Minute}, true},
		{"10m timeout, just before", "10m", "", []time.Duration{10*time.Minute - time.Millisecond}, false},
		{"10m timeout, at it", "10m", "", []time.Duration{10 * time.Minute}, true},
		{"timeout lengthened", "1m", "10m", []time.Duration{5 * time.Minute}, false},
		{"timeout shortened", "10m", "1m", []time.Duration{2 * time.Minute}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := testclock.New(time.Now())
			r := newReplica(t, openStore(t), clk, nil)
			cr, longIdle := setup(t, r) // a channel with a 2h timeout
			bob := cr
			bob.Token = apply(t, r, cr, longIdle, "bob")
			ch, err := r.msg.CreateChannel(ctx, rootCaller, ccmessaging.ChannelRequest{Name: "c", AppKeys: []string{cr.AppKey}, SessionIdleTimeout: tc.idle})
			if err != nil {
				t.Fatal(err)
			}
			cr.Token = apply(t, r, cr, ch.ID, "alice")
			idle, _ := time.ParseDuration(tc.idle)
			if tc.change != "" {
				if _, err := r.msg.UpdateChannel(ctx, rootCaller, ch.ID, ccmessaging.UpdateChannelRequest{SessionIdleTimeout: &tc.change}); err != nil {
					t.Fatal(err)
				}
				idle, _ = time.ParseDuration(tc.change)
			}
			for i, gap := range tc.gaps {
				clk.Advance(gap)
				id, _, err := r.msg.Verify(ctx, cr)
				if i == len(tc.gaps)-1 && tc.ended {
					wantUnauthorized(t, err, "session ended: idle timeout")
					if n := len(r.msg.Sessions(ch.ID, "")); n != 0 {
						t.Fatalf("idle session listed")
					}
					if _, _, err := r.msg.Verify(ctx, bob); err != nil {
						t.Fatalf("session on the channel with a longer timeout: %v", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				if want := clk.Now().Add(idle).UnixMilli(); id.SessionExpires.UnixMilli() != want {
					t.Fatalf("request %d: session expires %v, want now + %v", i, id.SessionExpires, idle)
				}
			}
		})
	}
}

// TestMaximumLifetimeRules covers the session's maximum lifetime: however
// active, a session ends at its maximum, and the end it announces is
// never later than that.
func TestMaximumLifetimeRules(t *testing.T) {
	ctx := context.Background()
	clk := testclock.New(time.Now())
	r := newReplica(t, openStore(t), clk, func(o *ccmessaging.Options) { o.SessionMax = 90 * time.Minute })
	cr, channelID := setup(t, r) // idle timeout 2h
	cr.Token = apply(t, r, cr, channelID, "alice")
	end := clk.Now().Add(90 * time.Minute)
	for i, gap := range []time.Duration{30 * time.Minute, 30 * time.Minute, 30*time.Minute - time.Millisecond} {
		clk.Advance(gap)
		id, renewed, err := r.msg.Verify(ctx, cr)
		if err != nil {
			t.Fatalf("request %d, before the maximum: %v", i, err)
		}
		if renewed != "" {
			cr.Token = renewed
		}
		if id.SessionExpires.UnixMilli() != end.UnixMilli() {
			t.Fatalf("request %d: session expires %v, want the maximum %v", i, id.SessionExpires, end)
		}
	}
	clk.Advance(time.Millisecond)
	_, _, err := r.msg.Verify(ctx, cr)
	wantUnauthorized(t, err, "session ended: maximum lifetime reached")
	if n := len(r.msg.Sessions("", "")); n != 0 {
		t.Fatalf("session past its maximum listed")
	}
}

// TestChannelRecreatedRules checks that a channel deleted and created
// again with the same ID does not revive the sessions of the first one.
func TestChannelRecreatedRules(t *testing.T) {
	ctx := context.Background()
	r := newReplica(t, openStore(t), testclock.New(time.Now()), nil)
	cr, _ := setup(t, r)
	req := ccmessaging.ChannelRequest{ID: "777", Name: "c", AppKeys: []string{cr.AppKey}}
	if _, err := r.msg.CreateChannel(ctx, rootCaller, req); err != nil {
		t.Fatal(err)
	}
	cr.Token = apply(t, r, cr, "777", "alice")
	if err := r.msg.DeleteChannel(ctx, rootCaller, "777"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.msg.CreateChannel(ctx, rootCaller, req); err != nil {
		t.Fatal(err)
	}
	_, _, err := r.msg.Verify(ctx, cr)
	wantUnauthorized(t, err, "session ended: channel deleted")
	cr.Token = apply(t, r, cr, "777", "alice")
	if _, _, err := r.msg.Verify(ctx, cr); err != nil {
		t.Fatalf("session on the new channel: %v", err)
	}
}

// TestRenewalRules covers what a token is worth: the current token works
// until its exp, is renewed in-band from then on while the session lives,
// and the token it superseded answers the current one for the renewal
// grace, to the millisecond, then never again; tokens of an earlier
// session, or two generations old, never work. Tokens live 1h, the grace
// is 60s and the channel's idle timeout 2h.
func TestRenewalRules(t *testing.T) {
	const (
		valid   = "valid"   // accepted, not renewed
		renewed = "renewed" // accepted with a new token
		current = "current" // accepted, answering the current token
	)
	type env struct {
		t     *testing.T
		r     *replica
		clk   *testclock.Clock
		cr    ccmessaging.Credentials // with the first token of alice's session
		ch    string
		fresh string // the latest token renew returned
	}
	// renew presents cr's token, expired, and returns the new one.
	renew := func(e *env, tok string) string {
		e.t.Helper()
		c := e.cr
		c.Token = tok
		_, next, err := e.r.msg.Verify(context.Background(), c)
		if err != nil || next == "" {
			e.t.Fatalf("renewal: %v (new token %v)", err, next != "")
		}
		e.fresh = next
		return next
	}
	for _, tc := range []struct {
		name    string
		present func(e *env) ccmessaging.Credentials
		want    string // valid, renewed, current, or the detail of the 401
	}{
		{"fresh token", func(e *env) ccmessaging.Credentials { return e.cr }, valid},
		{"last millisecond before exp", func(e *env) ccmessaging.Credentials {
			e.clk.Advance(time.Hour - time.Millisecond)
			return e.cr
		}, valid},
		{"at exp", func(e *env) ccmessaging.Credentials {
			e.clk.Advance(time.Hour)
			return e.cr
		}, renewed},
		{"expired long ago, session active", func(e *env) ccmessaging.Credentials {
			e.clk.Advance(2*time.Hour - time.Millisecond)
			return e.cr
		}, renewed},
		{"expired, session idled out", func(e *env) ccmessaging.Credentials {
			e.clk.Advance(2 * time.Hour)
			return e.cr
		}, "session ended: idle timeout"},
		{"new token after renewal", func(e *env) ccmessaging.Credentials {
			e.clk.Advance(time.Hour)
			c := e.cr
			c.Token = renew(e, e.cr.Token)
			return c
		}, valid},
		{"superseded, at once", func(e *env) ccmessaging.Credentials {
			e.clk.Advance(time.Hour)
			renew(e, e.cr.Token)
			return e.cr
		}, current},
		{"superseded, last millisecond of the grace", func(e *env) ccmessaging.Credentials {
			e.clk.Advance(time.Hour)
			renew(e, e.cr.Token)
			e.clk.Advance(time.Minute - time.Millisecond)
			return e.cr
		}, current},
		{"superseded, end of the grace", func(e *env) ccmessaging.Credentials {
			e.clk.Advance(time.Hour)
			renew(e, e.cr.Token)
			e.clk.Advance(time.Minute)
			return e.cr
		}, "ccmessaging-token was superseded"},
		{"superseded twice, within the second grace", func(e *env) ccmessaging.Credentials {
			e.clk.Advance(time.Hour)
			second := renew(e, e.cr.Token)
			e.clk.Advance(time.Hour)
			renew(e, second)
			return e.cr
		}, "ccmessaging-token was superseded"},
		{"session opened again", func(e *env) ccmessaging.Credentials {
			apply(e.t, e.r, e.cr, e.ch, "alice")
			return e.cr
		}, "ccmessaging-token was superseded"},
		{"session opened again, old token expired", func(e *env) ccmessaging.Credentials {
			e.clk.Advance(time.Hour)
			apply(e.t, e.r, e.cr, e.ch, "alice")
			return e.cr
		}, "ccmessaging-token was superseded"},
		{"session ended by the user", func(e *env) ccmessaging.Credentials {
			id, _, err := e.r.msg.Verify(context.Background(), e.cr)
			if err != nil {
				e.t.Fatal(err)
			}
			if err := e.r.msg.EndSession(context.Background(), id, e.cr.IP); err != nil {
				e.t.Fatal(err)
			}
			return e.cr
		}, "session ended: no such session"},
		{"another user's session untouched", func(e *env) ccmessaging.Credentials {
			apply(e.t, e.r, e.cr, e.ch, "bob")
			return e.cr
		}, valid},
		{"presented by another app", func(e *env) ccmessaging.Credentials {
			c := otherApp(e.t, e.r)
			c.Token = e.cr.Token
			return c
		}, "ccmessaging-token belongs to another app"},
		{"no token", func(e *env) ccmessaging.Credentials {
			c := e.cr
			c.Token = ""
			return c
		}, "ccmessaging-token is missing"},
		{"not a token", func(e *env) ccmessaging.Credentials {
			c := e.cr
			c.Token = e.cr.Token + "x"
			return c
		}, "ccmessaging-token is invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := testclock.New(time.Now().Truncate(time.Second))
			r := newReplica(t, openStore(t), clk, nil)
			cr, ch := setup(t, r)
			cr.Token = apply(t, r, cr, ch, "alice")
			e := &env{t: t, r: r, clk: clk, cr: cr, ch: ch}
			c := tc.present(e)
			id, next, err := r.msg.Verify(context.Background(), c)
			switch tc.want {
			case valid:
				if err != nil || next != "" {
					t.Fatalf("want accepted without renewal, got new token %v, %v", next != "", err)
				}
			case renewed:
				if err != nil || next == "" || next == c.Token {
					t.Fatalf("want a new token, got %v, %v", next != "", err)
				}
				end := clk.Now().Add(time.Hour)
				if id.Expires.Before(end) || !id.Expires.Before(end.Add(time.Second)) || id.Expires.Nanosecond() != 0 {
					t.Fatalf("new token expires %v, want the first whole second at or after %v", id.Expires, end)
				}
				c.Token = next
				if _, again, err := r.msg.Verify(context.Background(), c); err != nil || again != "" {
					t.Fatalf("the new token: renewed again %v, %v", again != "", err)
				}
			case current:
				if err != nil || next != e.fresh {
					t.Fatalf("want the current token, got %v (the current one: %v), %v", next != "", next == e.fresh, err)
				}
			default:
				wantUnauthorized(t, err, tc.want)
			}
		})
	}
}
