package apifabric

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/engine"
	"github.com/gatehouse/gatehouse/internal/store/bolt"
	"github.com/gatehouse/gatehouse/internal/testclock"
)

// fuzzService is a Service over a bolt store with a frozen clock, so that
// seeded tokens stay valid however long fuzzing runs, and an active app.
// Audit lines go to the returned buffer.
func fuzzService(f *testing.F) (*Service, *CreatedApp, *bytes.Buffer) {
	f.Helper()
	st, err := bolt.Open(filepath.Join(f.TempDir(), "gatehouse.db"), bolt.Options{})
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(func() { cancel(); st.Close() })
	clk := testclock.New(time.Unix(1_700_000_000, 0))
	var lines bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&lines, nil))
	s, err := New(ctx, st, audit.New(nil, logger, 0), slog.New(slog.DiscardHandler), Options{Now: clk.Now})
	if err != nil {
		f.Fatal(err)
	}
	app, err := s.CreateApp(ctx, authz.Caller{Account: engine.RootAccount}, CreateAppRequest{Name: "crm"})
	if err != nil {
		f.Fatal(err)
	}
	return s, app, &lines
}

// FuzzVerify feeds x-app-key and Authorization values to Verify, seeded
// with valid, expired and other apps' tokens. An AccessToken that verifies
// is one this service issued, byte for byte (issuing its claims again
// gives the same text), for the app named by x-app-key; every refusal is
// a 4xx API error that echoes neither header.
func FuzzVerify(f *testing.F) {
	s, app, _ := fuzzService(f)
	now := s.opts.Now()
	resp, err := s.TokenByAkSk(context.Background(), TokenRequest{AppKey: app.AppKey, AppSecret: app.AppSecret}, "127.0.0.1")
	if err != nil {
		f.Fatal(err)
	}
	expired, err := s.issue(app.AppKey, 1, now.Add(-2*time.Hour), time.Hour, "jti-expired")
	if err != nil {
		f.Fatal(err)
	}
	unknown, err := s.issue("no-such-app", 1, now, time.Hour, "jti-unknown")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(app.AppKey, "Bearer "+resp.AccessToken)
	f.Add(app.AppKey, "bearer "+resp.AccessToken)
	f.Add("other", "Bearer "+resp.AccessToken)
	f.Add(app.AppKey, "Bearer "+expired)
	f.Add("no-such-app", "Bearer "+unknown)
	f.Add(app.AppKey, "Bearer  "+resp.AccessToken)
	f.Fuzz(func(t *testing.T, appKey, authorization string) {
		a, err := s.Verify(appKey, authorization)
		if err != nil {
			ae, ok := apierror.As(err)
			if !ok {
				t.Fatalf("Verify returned %T %v, not an API error", err, err)
			}
			if st := ae.Status(); st < 400 || st >= 500 {
				t.Fatalf("Verify refused with status %d (%s)", st, ae.Code)
			}
			for _, in := range []string{appKey, authorization} {
				if len(in) >= 8 && strings.Contains(ae.Message+ae.Detail, in) {
					t.Fatalf("the error %q echoes the input %q", ae.Message+" "+ae.Detail, in)
				}
			}
			return
		}
		if a.AppKey != appKey {
			t.Fatalf("a token of app %q verified for x-app-key %q", a.AppKey, appKey)
		}
		tok, _ := bearerToken(authorization)
		c, err := s.parse(tok, now)
		if err != nil {
			t.Fatalf("Verify accepted a token parse refuses: %v", err)
		}
		again, err := s.issue(c.Subject, c.Generation, c.IssuedAt.Time, c.ExpiresAt.Sub(c.IssuedAt.Time), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if again != tok {
			t.Fatalf("accepted token is not in canonical form:\n got %q\nwant %q", tok, again)
		}
	})
}

// FuzzTokenByAkSk feeds tokenByAkSk bodies, decoded as the endpoint
// decodes them, and X-Token-Expire values. Only the app's own key and
// secret with a valid lifetime (digits only, 1..3600) get a token, valid
// for that long and accepted by Verify; the secret is never echoed in an
// error nor written to the audit log.
func FuzzTokenByAkSk(f *testing.F) {
	s, app, lines := fuzzService(f)
	body := func(key, secret string) []byte {
		b, _ := json.Marshal(map[string]string{"app_key": key, "app_secret": secret})
		return b
	}
	f.Add(body(app.AppKey, app.AppSecret), "", false)
	f.Add(body(app.AppKey, app.AppSecret), "3600", true)
	f.Add(body(app.AppKey, app.AppSecret), "0600", true)
	f.Add(body(app.AppKey, app.AppSecret), "+60", true)
	f.Add(body(app.AppKey, app.AppSecret), "3601", true)
	f.Add(body(app.AppKey, app.AppSecret+"x"), "", false)
	f.Add(body(app.AppSecret, app.AppKey), "", false)
	f.Add(body("", app.AppSecret), "", false)
	f.Fuzz(func(t *testing.T, b []byte, expire string, withExpire bool) {
		var req TokenRequest
		if json.Unmarshal(b, &req) != nil {
			return
		}
		if withExpire {
			req.Expire = &expire
		}
		lines.Reset()
		resp, err := s.TokenByAkSk(context.Background(), req, "127.0.0.1")
		seconds, validExpire := uint64(DefaultTokenSeconds), true
		if withExpire {
			n, perr := strconv.ParseUint(expire, 10, 64)
			seconds, validExpire = n, perr == nil && n >= 1 && n <= MaxTokenSeconds
		}
		want := req.AppKey == app.AppKey && req.AppSecret == app.AppSecret && validExpire
		if (err == nil) != want {
			t.Fatalf("key %q, secret matches %v, X-Token-Expire %q (%v): err %v, want success %v",
				req.AppKey, req.AppSecret == app.AppSecret, expire, withExpire, err, want)
		}
		secretMayShow := len(req.AppSecret) < 8 || strings.Contains(app.AppKey+" 127.0.0.1 app.token", req.AppSecret) ||
			strings.Contains(req.AppKey, req.AppSecret)
		if !secretMayShow && strings.Contains(lines.String(), req.AppSecret) {
			t.Fatalf("the audit log holds the secret: %s", lines.String())
		}
		if err != nil {
			ae, ok := apierror.As(err)
			if !ok || ae.Status() >= 500 {
				t.Fatalf("TokenByAkSk failed with %v", err)
			}
			if !secretMayShow && len(req.AppSecret) >= 16 && strings.Contains(ae.Message+ae.Detail, req.AppSecret) {
				t.Fatalf("the error %q echoes the secret", ae.Detail)
			}
			return
		}
		if resp.Expires != strconv.FormatUint(seconds, 10) || resp.AppKey != app.AppKey {
			t.Fatalf("response %+v for X-Token-Expire %q", resp, expire)
		}
		if _, err := s.Verify(app.AppKey, "Bearer "+resp.AccessToken); err != nil {
			t.Fatalf("issued token does not verify: %v", err)
		}
	})
}
