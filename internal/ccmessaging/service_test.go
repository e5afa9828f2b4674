package ccmessaging_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/apifabric"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/ccmessaging"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/bolt"
	"github.com/gatehouse/gatehouse/internal/testclock"
)

// replica is one Gatehouse's domain services over a shared store.
type replica struct {
	fabric *apifabric.Service
	msg    *ccmessaging.Service
}

func openStore(t testing.TB) store.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "gatehouse.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newReplica starts the services of one replica. Sessions follow clk;
// AccessTokens follow real time, so moving clk does not expire them.
// mod, if not nil, adjusts the session options.
func newReplica(t testing.TB, st store.Store, clk *testclock.Clock, mod func(*ccmessaging.Options)) *replica {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(slog.DiscardHandler)
	log := audit.New(nil, logger, 0)
	fabric, err := apifabric.New(ctx, st, log, logger, apifabric.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts := ccmessaging.Options{TokenTTL: time.Hour, RenewGrace: time.Minute, Now: clk.Now}
	if mod != nil {
		mod(&opts)
	}
	msg, err := ccmessaging.New(ctx, st, fabric, log, logger, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { msg.Close(); cancel() })
	return &replica{fabric: fabric, msg: msg}
}

// setup creates an app and a channel open to it on r and returns the
// credentials of the app (Token unset) and the channel's ID.
func setup(t testing.TB, r *replica) (ccmessaging.Credentials, string) {
	t.Helper()
	ctx := context.Background()
	admin := authz.Caller{Account: "root"}
	app, err := r.fabric.CreateApp(ctx, admin, apifabric.CreateAppRequest{Name: "crm"})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := r.msg.CreateChannel(ctx, admin, ccmessaging.ChannelRequest{Name: "web", AppKeys: []string{app.AppKey}, SessionIdleTimeout: "2h"})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := r.fabric.TokenByAkSk(ctx, apifabric.TokenRequest{AppKey: app.AppKey, AppSecret: app.AppSecret}, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return ccmessaging.Credentials{AppKey: app.AppKey, Authorization: "Bearer " + tok.AccessToken, IP: "127.0.0.1"}, ch.ID
}

func apply(t testing.TB, r *replica, cr ccmessaging.Credentials, channelID, user string) string {
	t.Helper()
	app, err := r.msg.VerifyApp(cr.AppKey, cr.Authorization)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := r.msg.ApplyToken(context.Background(), app, ccmessaging.ApplyRequest{
		UserID: user, UserName: "User " + user, ChannelID: channelID, Locale: "en_US"}, cr.IP)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// eventually polls cond for up to five seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestReplicasShareSessions runs two replicas over one store: a session
// opened on one is usable on the other at once, and both renewing the same
// expired token concurrently yields one new token.
func TestReplicasShareSessions(t *testing.T) {
	st := openStore(t)
	clk := testclock.New(time.Now())
	a, b := newReplica(t, st, clk, nil), newReplica(t, st, clk, nil)
	cr, channelID := setup(t, a)
	eventually(t, "replica b to load the app and channel", func() bool {
		_, err := b.msg.GetChannel(channelID)
		return err == nil && b.fabric.AppExists(cr.AppKey)
	})
	ctx := context.Background()
	for i := range 10 {
		user := "u" + string(rune('a'+i))
		cr.Token = apply(t, a, cr, channelID, user)
		if _, renewed, err := b.msg.Verify(ctx, cr); err != nil || renewed != "" {
			t.Fatalf("token from replica a on replica b: renewed %v, %v", renewed != "", err)
		}
		clk.Advance(time.Hour + time.Second)
		var wg sync.WaitGroup
		got := make([]string, 16)
		errs := make([]error, 16)
		for j := range got {
			r := a
			if j%2 == 1 {
				r = b
			}
			wg.Go(func() { _, got[j], errs[j] = r.msg.Verify(ctx, cr) })
		}
		wg.Wait()
		for j := range got {
			if errs[j] != nil {
				t.Fatalf("iteration %d, request %d: %v", i, j, errs[j])
			}
			if got[j] == "" || got[j] != got[0] {
				t.Fatalf("iteration %d: request %d got a different renewed token", i, j)
			}
		}
		for _, r := range []*replica{a, b} {
			next := cr
			next.Token = got[0]
			if _, renewed, err := r.msg.Verify(ctx, next); err != nil || renewed != "" {
				t.Fatalf("renewed token: renewed again %v, %v", renewed != "", err)
			}
			if n := r.msg.HandedOver(); n != 0 {
				t.Fatalf("%d renewed tokens still handed over", n)
			}
		}
	}
}

func TestSupersededTokenDiesAfterGrace(t *testing.T) {
	clk := testclock.New(time.Now())
	r := newReplica(t, openStore(t), clk, nil)
	cr, channelID := setup(t, r)
	cr.Token = apply(t, r, cr, channelID, "alice")
	ctx := context.Background()
	clk.Advance(time.Hour + time.Second)
	_, renewed, err := r.msg.Verify(ctx, cr)
	if err != nil || renewed == "" {
		t.Fatalf("expired token: renewed %v, %v", renewed != "", err)
	}
	clk.Advance(59 * time.Second)
	if _, again, err := r.msg.Verify(ctx, cr); err != nil || again != renewed {
		t.Fatalf("superseded token within grace: %v (same renewed token: %v)", err, again == renewed)
	}
	clk.Advance(time.Second)
	if _, _, err := r.msg.Verify(ctx, cr); !errors.Is(err, apierror.Unauthorized) {
		t.Fatalf("superseded token after grace: %v", err)
	}
}

func TestSessionEnds(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		end  func(r *replica, clk *testclock.Clock, cr *ccmessaging.Credentials, channelID string)
	}{
		{"idle timeout", func(_ *replica, clk *testclock.Clock, _ *ccmessaging.Credentials, _ string) {
			clk.Advance(2 * time.Hour)
		}},
		{"maximum lifetime", func(r *replica, clk *testclock.Clock, cr *ccmessaging.Credentials, _ string) {
			for range 49 { // 23h41m of requests 29 minutes apart, renewing every hour
				clk.Advance(29 * time.Minute)
				_, renewed, err := r.msg.Verify(ctx, *cr)
				if err != nil {
					t.Fatalf("request before the maximum lifetime: %v", err)
				}
				if renewed != "" {
					cr.Token = renewed
				}
			}
			clk.Advance(29 * time.Minute)
		}},
		{"channel deleted", func(r *replica, _ *testclock.Clock, _ *ccmessaging.Credentials, channelID string) {
			if err := r.msg.DeleteChannel(ctx, authz.Caller{}, channelID); err != nil {
				t.Fatal(err)
			}
		}},
		{"app removed from channel", func(r *replica, _ *testclock.Clock, _ *ccmessaging.Credentials, channelID string) {
			if _, err := r.msg.UpdateChannel(ctx, authz.Caller{}, channelID, ccmessaging.UpdateChannelRequest{AppKeys: &[]string{}}); err != nil {
				t.Fatal(err)
			}
		}},
		{"admin", func(r *replica, _ *testclock.Clock, _ *ccmessaging.Credentials, channelID string) {
			if err := r.msg.KillSession(ctx, authz.Caller{}, channelID, "alice"); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := testclock.New(time.Now())
			r := newReplica(t, openStore(t), clk, nil)
			cr, channelID := setup(t, r)
			cr.Token = apply(t, r, cr, channelID, "alice")
			tc.end(r, clk, &cr, channelID)
			if _, _, err := r.msg.Verify(ctx, cr); !errors.Is(err, apierror.Unauthorized) {
				t.Fatalf("want 401201, got %v", err)
			}
			if got := r.msg.Sessions("", ""); len(got) != 0 {
				t.Fatalf("ended session listed: %+v", got)
			}
		})
	}
}

// TestSessionsEndForGood checks that a session ended by its app's
// deactivation, by its app's removal from the channel or by the channel's
// deletion stays ended when the app is reactivated, added again or the
// channel re-created with the same ID: neither a fresh AccessToken nor an
// in-band renewal of the expired token revives it, and the store keeps the
// record as it was. A rotated secret does not end sessions: with an
// AccessToken of the new secret they go on.
func TestSessionsEndForGood(t *testing.T) {
	ctx := context.Background()
	admin := authz.Caller{Account: "root"}
	status := func(s string) apifabric.UpdateAppRequest { return apifabric.UpdateAppRequest{Status: &s} }
	setApps := func(r *replica, channelID string, keys ...string) {
		if _, err := r.msg.UpdateChannel(ctx, admin, channelID, ccmessaging.UpdateChannelRequest{AppKeys: &keys}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		why  string // detail of the answer to the old token
		// end ends the session and undoes what ended it; it returns the
		// credentials to use from then on and the ID of the channel.
		end func(r *replica, cr ccmessaging.Credentials, channelID string) (ccmessaging.Credentials, string)
	}{
		{"app deactivated and reactivated", "session ended: app deactivated", func(r *replica, cr ccmessaging.Credentials, channelID string) (ccmessaging.Credentials, string) {
			for _, st := range []string{apifabric.StatusInactive, apifabric.StatusActive} {
				if _, err := r.fabric.UpdateApp(ctx, admin, cr.AppKey, status(st)); err != nil {
					t.Fatal(err)
				}
			}
			return reissue(t, r, cr), channelID
		}},
		{"app removed from the channel and added again", "session ended: channel no longer open to the app", func(r *replica, cr ccmessaging.Credentials, channelID string) (ccmessaging.Credentials, string) {
			setApps(r, channelID)
			setApps(r, channelID, cr.AppKey)
			return cr, channelID
		}},
		{"channel deleted and re-created", "session ended: channel deleted", func(r *replica, cr ccmessaging.Credentials, channelID string) (ccmessaging.Credentials, string) {
			if err := r.msg.DeleteChannel(ctx, admin, channelID); err != nil {
				t.Fatal(err)
			}
			if _, err := r.msg.CreateChannel(ctx, admin, ccmessaging.ChannelRequest{ID: channelID, Name: "web", AppKeys: []string{cr.AppKey}, SessionIdleTimeout: "2h"}); err != nil {
				t.Fatal(err)
			}
			return cr, channelID
		}},
		{"secret rotated", "", func(r *replica, cr ccmessaging.Credentials, channelID string) (ccmessaging.Credentials, string) {
			return reissue(t, r, cr), channelID
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t)
			clk := testclock.New(time.Now())
			r := newReplica(t, st, clk, nil)
			cr, channelID := setup(t, r)
			cr.Token = apply(t, r, cr, channelID, "alice")
			if _, _, err := r.msg.Verify(ctx, cr); err != nil {
				t.Fatal(err)
			}
			cr, channelID = tc.end(r, cr, channelID)
			if tc.why == "" {
				if _, _, err := r.msg.Verify(ctx, cr); err != nil {
					t.Fatalf("session after %s: %v", tc.name, err)
				}
				return
			}
			wantEnded := func(when string) {
				t.Helper()
				_, renewed, err := r.msg.Verify(ctx, cr)
				ae, _ := apierror.As(err)
				if !errors.Is(err, apierror.Unauthorized) || ae.Detail != tc.why || renewed != "" {
					t.Fatalf("%s: got %v (renewed %v), want 401201 %q", when, err, renewed != "", tc.why)
				}
			}
			wantEnded("old token")
			if got := r.msg.Sessions("", ""); len(got) != 0 {
				t.Fatalf("ended session listed: %+v", got)
			}
			items, _, err := st.List(ctx, "ccsessions/")
			if err != nil || len(items) != 1 {
				t.Fatalf("list: %d items, %v", len(items), err)
			}
			clk.Advance(time.Hour + time.Second) // the token expired: a live session would renew it
			wantEnded("expired old token")
			if it, err := st.Get(ctx, items[0].Key); err != nil || it.Revision != items[0].Revision {
				t.Fatalf("the refused renewal wrote the session (revision %d → %d): %v", items[0].Revision, it.Revision, err)
			}
			cr.Token = apply(t, r, cr, channelID, "alice")
			if _, _, err := r.msg.Verify(ctx, cr); err != nil {
				t.Fatalf("new session: %v", err)
			}
		})
	}
}

// reissue rotates the secret of cr's app, without grace, and returns cr
// with an AccessToken of the new secret.
func reissue(t *testing.T, r *replica, cr ccmessaging.Credentials) ccmessaging.Credentials {
	t.Helper()
	sec, err := r.fabric.RotateSecret(context.Background(), authz.Caller{Account: "root"}, cr.AppKey, apifabric.RotateSecretRequest{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := r.fabric.TokenByAkSk(context.Background(), apifabric.TokenRequest{AppKey: cr.AppKey, AppSecret: sec.AppSecret}, cr.IP)
	if err != nil {
		t.Fatal(err)
	}
	cr.Authorization = "Bearer " + tok.AccessToken
	return cr
}

// TestActivityIsCoalesced checks that verified requests do not write the
// store, and that Close writes the last activity they recorded.
func TestActivityIsCoalesced(t *testing.T) {
	st := openStore(t)
	clk := testclock.New(time.Now())
	r := newReplica(t, st, clk, func(o *ccmessaging.Options) { o.FlushInterval = time.Hour })
	cr, channelID := setup(t, r)
	cr.Token = apply(t, r, cr, channelID, "alice")
	ctx := context.Background()
	items, rev, err := st.List(ctx, "ccsessions/")
	if err != nil || len(items) != 1 {
		t.Fatalf("list: %d items, %v", len(items), err)
	}
	for range 100 {
		clk.Advance(time.Second)
		if _, _, err := r.msg.Verify(ctx, cr); err != nil {
			t.Fatal(err)
		}
	}
	if it, err := st.Get(ctx, items[0].Key); err != nil || it.Revision != items[0].Revision {
		t.Fatalf("verified requests wrote the session (revision %d → %d): %v", items[0].Revision, it.Revision, err)
	}
	r.msg.Close()
	it, err := st.Get(ctx, items[0].Key)
	if err != nil || it.Revision <= rev {
		t.Fatalf("Close did not write the last activity: %v", err)
	}
	if want := clk.Now().Add(30 * time.Minute); it.Expires.Before(want) {
		t.Fatalf("record expires %v, before the idle end %v", it.Expires, want)
	}
}

// BenchmarkVerify measures a protected request with a valid token: both
// tokens are known, so it is hashing and map lookups only.
func BenchmarkVerify(b *testing.B) {
	r := newReplica(b, openStore(b), testclock.New(time.Now()), nil)
	cr, channelID := setup(b, r)
	cr.Token = apply(b, r, cr, channelID, "alice")
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := r.msg.Verify(ctx, cr); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkApplyToken measures opening sessions: one durable store write
// and the wait for the change feed each, one at a time (each write a
// commit of its own) and from parallel callers (whose writes share
// commits).
func BenchmarkApplyToken(b *testing.B) {
	r := newReplica(b, openStore(b), testclock.New(time.Now()), nil)
	cr, channelID := setup(b, r)
	app, err := r.msg.VerifyApp(cr.AppKey, cr.Authorization)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var n atomic.Int64
	open := func() error {
		req := ccmessaging.ApplyRequest{UserID: "user" + strconv.FormatInt(n.Add(1)%1000, 10), UserName: "User", ChannelID: channelID, Locale: "en"}
		_, err := r.msg.ApplyToken(ctx, app, req, cr.IP)
		return err
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := open(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := open(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkRenew measures the in-band renewal of expired tokens by
// parallel callers: one durable store write (shared with concurrent ones)
// and the wait for the change feed each.
func BenchmarkRenew(b *testing.B) {
	clk := testclock.New(time.Now())
	r := newReplica(b, openStore(b), clk, nil)
	cr, channelID := setup(b, r)
	app, err := r.msg.VerifyApp(cr.AppKey, cr.Authorization)
	if err != nil {
		b.Fatal(err)
	}
	tokens := make([]string, b.N)
	errs := make([]error, 32)
	var wg sync.WaitGroup
	for w := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < b.N && errs[w] == nil; i += len(errs) {
				req := ccmessaging.ApplyRequest{UserID: "user" + strconv.Itoa(i), UserName: "User", ChannelID: channelID, Locale: "en"}
				tokens[i], errs[w] = r.msg.ApplyToken(context.Background(), app, req, cr.IP)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	clk.Advance(time.Hour + time.Second)
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		cr := cr
		for pb.Next() {
			cr.Token = tokens[next.Add(1)-1]
			if _, renewed, err := r.msg.Verify(ctx, cr); err != nil || renewed == "" {
				b.Errorf("renewal: %q, %v", renewed, err)
				return
			}
		}
	})
}
