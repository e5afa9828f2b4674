package apifabric_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/apifabric"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/bolt"
	"github.com/gatehouse/gatehouse/internal/testclock"
)

var admin = authz.Caller{Account: "root", IP: "127.0.0.1"}

// newService starts a Service on a new store; mods adjust its options.
func newService(t testing.TB, mods ...func(*apifabric.Options)) (*apifabric.Service, *testclock.Clock) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "gatehouse.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); st.Close() })
	clk := testclock.New(time.Now())
	logger := slog.New(slog.DiscardHandler)
	opts := apifabric.Options{Now: clk.Now}
	for _, mod := range mods {
		mod(&opts)
	}
	s, err := apifabric.New(ctx, st, audit.New(nil, logger, 0), logger, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, clk
}

func createApp(t testing.TB, s *apifabric.Service) *apifabric.CreatedApp {
	t.Helper()
	app, err := s.CreateApp(context.Background(), admin, apifabric.CreateAppRequest{Name: "crm"})
	if err != nil {
		t.Fatal(err)
	}
	return app
}

func token(t testing.TB, s *apifabric.Service, key, secret string) string {
	t.Helper()
	resp, err := s.TokenByAkSk(context.Background(), apifabric.TokenRequest{AppKey: key, AppSecret: secret}, "127.0.0.1")
	if err != nil {
		t.Fatalf("tokenByAkSk: %v", err)
	}
	return resp.AccessToken
}

func wantCode(t *testing.T, err error, want *apierror.Error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("want %s, got %v", want.Code, err)
	}
}

func TestSecretFormat(t *testing.T) {
	s, _ := newService(t)
	app := createApp(t, s)
	raw, err := base64.RawURLEncoding.DecodeString(app.AppSecret)
	if err != nil || len(raw) != 32 {
		t.Fatalf("secret is not 32 bytes of base64url without padding: %d bytes, %v", len(raw), err)
	}
	if other := createApp(t, s); other.AppSecret == app.AppSecret || other.AppKey == app.AppKey {
		t.Fatal("two apps got the same key or secret")
	}
}

func TestTokenByAkSk(t *testing.T) {
	s, _ := newService(t)
	app := createApp(t, s)
	str := func(v string) *string { return &v }
	for _, tc := range []struct {
		name   string
		req    apifabric.TokenRequest
		want   *apierror.Error
		expire string
	}{
		{"default expiry", apifabric.TokenRequest{AppKey: app.AppKey, AppSecret: app.AppSecret}, nil, "600"},
		{"expire 1", apifabric.TokenRequest{AppKey: app.AppKey, AppSecret: app.AppSecret, Expire: str("1")}, nil, "1"},
		{"expire 3600", apifabric.TokenRequest{AppKey: app.AppKey, AppSecret: app.AppSecret, Expire: str("3600")}, nil, "3600"},
		{"expire 0", apifabric.TokenRequest{AppKey: app.AppKey, AppSecret: app.AppSecret, Expire: str("0")}, apierror.InvalidParams, ""},
		{"expire 3601", apifabric.TokenRequest{AppKey: app.AppKey, AppSecret: app.AppSecret, Expire: str("3601")}, apierror.InvalidParams, ""},
		{"expire +5", apifabric.TokenRequest{AppKey: app.AppKey, AppSecret: app.AppSecret, Expire: str("+5")}, apierror.InvalidParams, ""},
		{"expire empty", apifabric.TokenRequest{AppKey: app.AppKey, AppSecret: app.AppSecret, Expire: str("")}, apierror.InvalidParams, ""},
		{"expire abc", apifabric.TokenRequest{AppKey: app.AppKey, AppSecret: app.AppSecret, Expire: str("abc")}, apierror.InvalidParams, ""},
		{"missing key", apifabric.TokenRequest{AppSecret: app.AppSecret}, apierror.InvalidParams, ""},
		{"missing secret", apifabric.TokenRequest{AppKey: app.AppKey}, apierror.InvalidParams, ""},
		{"unknown key", apifabric.TokenRequest{AppKey: "nope", AppSecret: app.AppSecret}, apierror.InvalidAppCredentials, ""},
		{"wrong secret", apifabric.TokenRequest{AppKey: app.AppKey, AppSecret: app.AppSecret + "x"}, apierror.InvalidAppCredentials, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := s.TokenByAkSk(context.Background(), tc.req, "127.0.0.1")
			if tc.want != nil {
				wantCode(t, err, tc.want)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.Expires != tc.expire || resp.ApplyType != "Bearer" || resp.AppKey != app.AppKey || resp.UserID != "Anonymous" {
				t.Fatalf("response %+v", resp)
			}
			if _, err := s.Verify(app.AppKey, "Bearer "+resp.AccessToken); err != nil {
				t.Fatalf("fresh token refused: %v", err)
			}
		})
	}
}

func TestVerifyHeaders(t *testing.T) {
	s, _ := newService(t)
	app := createApp(t, s)
	other := createApp(t, s)
	tok := token(t, s, app.AppKey, app.AppSecret)
	parts := strings.Split(tok, ".")
	for _, tc := range []struct {
		name, appKey, auth string
		want               *apierror.Error
	}{
		{"ok", app.AppKey, "Bearer " + tok, nil},
		{"lower-case scheme", app.AppKey, "bearer " + tok, nil},
		{"missing app key", "", "Bearer " + tok, apierror.AppKeyMismatch},
		{"other app key", other.AppKey, "Bearer " + tok, apierror.AppKeyMismatch},
		{"missing authorization", app.AppKey, "", apierror.AccessTokenInvalid},
		{"two spaces", app.AppKey, "Bearer  " + tok, apierror.AccessTokenInvalid},
		{"no space", app.AppKey, "Bearer" + tok, apierror.AccessTokenInvalid},
		{"other scheme", app.AppKey, "Basic " + tok, apierror.AccessTokenInvalid},
		{"scheme only", app.AppKey, "Bearer ", apierror.AccessTokenInvalid},
		{"bad signature", app.AppKey, "Bearer " + parts[0] + "." + parts[1] + ".AAAA", apierror.AccessTokenInvalid},
		{"garbage", app.AppKey, "Bearer abc", apierror.AccessTokenInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := s.Verify(tc.appKey, tc.auth)
			if tc.want != nil {
				wantCode(t, err, tc.want)
				return
			}
			if err != nil || a.AppKey != app.AppKey || a.JTI == "" {
				t.Fatalf("verify: %+v, %v", a, err)
			}
		})
	}
}

func TestVerifyRejectsOtherAlgorithms(t *testing.T) {
	s, _ := newService(t)
	app := createApp(t, s)
	claims := jwt.MapClaims{"sub": app.AppKey, "gen": 1, "exp": time.Now().Add(time.Hour).Unix()}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	hs512, err := jwt.NewWithClaims(jwt.SigningMethodHS512, claims).SignedString([]byte(app.AppSecret))
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"none": none, "HS512 under the secret": hs512} {
		if _, err := s.Verify(app.AppKey, "Bearer "+tok); !errors.Is(err, apierror.AccessTokenInvalid) {
			t.Errorf("%s: want 401502, got %v", name, err)
		}
	}
}

func TestTokenExpires(t *testing.T) {
	s, clk := newService(t)
	app := createApp(t, s)
	one := "1"
	resp, err := s.TokenByAkSk(context.Background(), apifabric.TokenRequest{AppKey: app.AppKey, AppSecret: app.AppSecret, Expire: &one}, "")
	if err != nil {
		t.Fatal(err)
	}
	auth := "Bearer " + resp.AccessToken
	if _, err := s.Verify(app.AppKey, auth); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Second) // past exp: the cached entry must not answer
	_, err = s.Verify(app.AppKey, auth)
	wantCode(t, err, apierror.AccessTokenExpired)
}

func TestDeactivationRevokesForGood(t *testing.T) {
	s, _ := newService(t)
	ctx := context.Background()
	app := createApp(t, s)
	auth := "Bearer " + token(t, s, app.AppKey, app.AppSecret)
	inactive, active := apifabric.StatusInactive, apifabric.StatusActive
	if _, err := s.UpdateApp(ctx, admin, app.AppKey, apifabric.UpdateAppRequest{Status: &inactive}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Verify(app.AppKey, auth)
	wantCode(t, err, apierror.AccessTokenInvalid)
	_, err = s.TokenByAkSk(ctx, apifabric.TokenRequest{AppKey: app.AppKey, AppSecret: app.AppSecret}, "")
	wantCode(t, err, apierror.InvalidAppCredentials)
	if _, err := s.UpdateApp(ctx, admin, app.AppKey, apifabric.UpdateAppRequest{Status: &active}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Verify(app.AppKey, auth)
	wantCode(t, err, apierror.AccessTokenInvalid)
	if _, err := s.Verify(app.AppKey, "Bearer "+token(t, s, app.AppKey, app.AppSecret)); err != nil {
		t.Fatalf("token issued after reactivation: %v", err)
	}
}

// TestSessionEpoch checks that deactivation, and only deactivation,
// starts a new epoch, that an inactive or deleted app has none, and that
// verified AccessTokens carry the epoch in force.
func TestSessionEpoch(t *testing.T) {
	s, _ := newService(t)
	ctx := context.Background()
	app := createApp(t, s)
	want := func(step string, epoch int64, active bool) {
		t.Helper()
		if got, ok := s.SessionEpoch(app.AppKey); got != epoch || ok != active {
			t.Fatalf("%s: epoch %d, %v; want %d, %v", step, got, ok, epoch, active)
		}
		if !active {
			return
		}
		sec, err := s.RotateSecret(ctx, admin, app.AppKey, apifabric.RotateSecretRequest{})
		if err != nil {
			t.Fatal(err)
		}
		a, err := s.Verify(app.AppKey, "Bearer "+token(t, s, app.AppKey, sec.AppSecret))
		if err != nil || a.Epoch != epoch {
			t.Fatalf("%s: AccessToken of epoch %v, %v; want %d", step, a, err, epoch)
		}
		if got, _ := s.SessionEpoch(app.AppKey); got != epoch {
			t.Fatalf("%s: rotation moved the epoch to %d", step, got)
		}
	}
	setStatus := func(status string) {
		t.Helper()
		if _, err := s.UpdateApp(ctx, admin, app.AppKey, apifabric.UpdateAppRequest{Status: &status}); err != nil {
			t.Fatal(err)
		}
	}
	want("created", 0, true)
	setStatus(apifabric.StatusActive)
	want("active again", 0, true)
	setStatus(apifabric.StatusInactive)
	want("deactivated", 0, false)
	setStatus(apifabric.StatusInactive)
	setStatus(apifabric.StatusActive)
	want("reactivated", 1, true)
	if err := s.DeleteApp(ctx, admin, app.AppKey); err != nil {
		t.Fatal(err)
	}
	want("deleted", 0, false)
}

func TestRotationGrace(t *testing.T) {
	s, clk := newService(t)
	ctx := context.Background()
	app := createApp(t, s)
	oldAuth := "Bearer " + token(t, s, app.AppKey, app.AppSecret)
	sec, err := s.RotateSecret(ctx, admin, app.AppKey, apifabric.RotateSecretRequest{GraceSeconds: 60})
	if err != nil {
		t.Fatal(err)
	}
	if sec.AppSecret == app.AppSecret {
		t.Fatal("rotation kept the secret")
	}
	// Within the grace both secrets work, and so do the old tokens.
	graceAuth := "Bearer " + token(t, s, app.AppKey, app.AppSecret)
	newAuth := "Bearer " + token(t, s, app.AppKey, sec.AppSecret)
	for _, auth := range []string{oldAuth, graceAuth, newAuth} {
		if _, err := s.Verify(app.AppKey, auth); err != nil {
			t.Fatalf("within grace: %v", err)
		}
	}
	clk.Advance(60 * time.Second)
	for _, auth := range []string{oldAuth, graceAuth} {
		_, err := s.Verify(app.AppKey, auth)
		wantCode(t, err, apierror.AccessTokenInvalid)
	}
	_, err = s.TokenByAkSk(ctx, apifabric.TokenRequest{AppKey: app.AppKey, AppSecret: app.AppSecret}, "")
	wantCode(t, err, apierror.InvalidAppCredentials)
	if _, err := s.Verify(app.AppKey, newAuth); err != nil {
		t.Fatalf("token of the new secret: %v", err)
	}
	// Rotating without grace cuts the previous secret at once.
	if _, err := s.RotateSecret(ctx, admin, app.AppKey, apifabric.RotateSecretRequest{}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Verify(app.AppKey, newAuth)
	wantCode(t, err, apierror.AccessTokenInvalid)
}

func TestDeleteApp(t *testing.T) {
	s, _ := newService(t)
	ctx := context.Background()
	app := createApp(t, s)
	auth := "Bearer " + token(t, s, app.AppKey, app.AppSecret)
	if err := s.DeleteApp(ctx, admin, app.AppKey); err != nil {
		t.Fatal(err)
	}
	_, err := s.Verify(app.AppKey, auth)
	wantCode(t, err, apierror.AccessTokenInvalid)
	wantCode(t, s.DeleteApp(ctx, admin, app.AppKey), apierror.NotFound)
	_, err = s.GetApp(app.AppKey)
	wantCode(t, err, apierror.NotFound)
}

// BenchmarkVerify measures the hot path, a cached valid AccessToken, and
// the first verification of a token, which checks its signature.
func BenchmarkVerify(b *testing.B) {
	s, _ := newService(b)
	app := createApp(b, s)
	auth := "Bearer " + token(b, s, app.AppKey, app.AppSecret)
	b.Run("cache-hit", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Verify(app.AppKey, auth); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("cache-miss", func(b *testing.B) {
		// Many more tokens than a cache of 32 entries holds: nearly every
		// verification checks a signature.
		small, _ := newService(b, func(o *apifabric.Options) { o.CacheSize = 32 })
		app := createApp(b, small)
		auths := make([]string, 4096)
		for i := range auths {
			auths[i] = "Bearer " + token(b, small, app.AppKey, app.AppSecret)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, err := small.Verify(app.AppKey, auths[i%len(auths)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkTokenByAkSk measures issuing AccessTokens.
func BenchmarkTokenByAkSk(b *testing.B) {
	s, _ := newService(b)
	app := createApp(b, s)
	req := apifabric.TokenRequest{AppKey: app.AppKey, AppSecret: app.AppSecret}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.TokenByAkSk(context.Background(), req, "127.0.0.1"); err != nil {
			b.Fatal(err)
		}
	}
}

// auditGate is a store whose writes of audit records wait, once shut,
// until release is closed, and which records the targets of the audit
// records it stored.
type auditGate struct {
	store.Store
	shut    *atomic.Bool
	release chan struct{}
	stored  *sync.Map
}

func (g auditGate) Put(ctx context.Context, it store.Item) (store.Item, error) {
	if !strings.HasPrefix(it.Key, "audit/") || !g.shut.Load() {
		return g.Store.Put(ctx, it)
	}
	<-g.release
	out, err := g.Store.Put(ctx, it)
	var recs []audit.Record
	if json.Unmarshal(it.Value, &recs) == nil {
		for _, r := range recs {
			g.stored.Store(r.Outcome, true)
		}
	}
	return out, err
}

// TestTokenByAkSkAuditing checks that a successful exchange is answered
// without waiting for its audit record's store write, and that a refused
// one is answered only once its record is stored.
func TestTokenByAkSkAuditing(t *testing.T) {
	bs, err := bolt.Open(filepath.Join(t.TempDir(), "gatehouse.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := auditGate{Store: bs, shut: new(atomic.Bool), release: make(chan struct{}), stored: new(sync.Map)}
	var once sync.Once
	open := func() { once.Do(func() { close(g.release) }) }
	logger := slog.New(slog.DiscardHandler)
	log := audit.New(g, logger, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { open(); log.Close(); cancel(); bs.Close() })
	s, err := apifabric.New(ctx, g, log, logger, apifabric.Options{})
	if err != nil {
		t.Fatal(err)
	}
	app := createApp(t, s)
	g.shut.Store(true)

	answered := make(chan error, 1)
	go func() {
		_, err := s.TokenByAkSk(ctx, apifabric.TokenRequest{AppKey: app.AppKey, AppSecret: app.AppSecret}, "127.0.0.1")
		answered <- err
	}()
	select {
	case err := <-answered:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a successful exchange waited for its audit record's store write")
	}

	go func() {
		_, err := s.TokenByAkSk(ctx, apifabric.TokenRequest{AppKey: app.AppKey, AppSecret: app.AppSecret + "x"}, "127.0.0.1")
		answered <- err
	}()
	open()
	wantCode(t, <-answered, apierror.InvalidAppCredentials)
	if _, ok := g.stored.Load(audit.Failure); !ok {
		t.Fatal("a refused exchange was answered before its audit record was stored")
	}
}
