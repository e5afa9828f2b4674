package apifabric_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/apifabric"
)

// The rules of apps, secret rotation and AccessTokens, tested on the
// service itself; the HTTP tests keep what is wire (status codes, bodies).

// TestAppValidationRules covers the lengths and characters of names and
// descriptions (counted in characters) and the status values, on create
// and update; a refused update changes nothing.
func TestAppValidationRules(t *testing.T) {
	s, _ := newService(t)
	ctx := context.Background()
	str := func(v string) *string { return &v }

	t.Run("create", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			req  apifabric.CreateAppRequest
			ok   bool
		}{
			{"empty name", apifabric.CreateAppRequest{}, false},
			{"one character", apifabric.CreateAppRequest{Name: "a"}, true},
			{"64 characters", apifabric.CreateAppRequest{Name: strings.Repeat("a", 64)}, true},
			{"65 characters", apifabric.CreateAppRequest{Name: strings.Repeat("a", 65)}, false},
			{"64 characters of more bytes", apifabric.CreateAppRequest{Name: strings.Repeat("é", 64)}, true},
			{"65 characters of more bytes", apifabric.CreateAppRequest{Name: strings.Repeat("é", 65)}, false},
			{"newline in name", apifabric.CreateAppRequest{Name: "a\nb"}, false},
			{"DEL in name", apifabric.CreateAppRequest{Name: "a\x7f"}, false},
			{"invalid UTF-8 name", apifabric.CreateAppRequest{Name: "a\xff"}, false},
			{"spaces and punctuation", apifabric.CreateAppRequest{Name: "CRM (prod) / EU"}, true},
			{"256-character description", apifabric.CreateAppRequest{Name: "d", Description: strings.Repeat("d", 256)}, true},
			{"257-character description", apifabric.CreateAppRequest{Name: "d", Description: strings.Repeat("d", 257)}, false},
			{"tab in description", apifabric.CreateAppRequest{Name: "d", Description: "a\tb"}, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := len(s.ListApps())
				app, err := s.CreateApp(ctx, admin, tc.req)
				if !tc.ok {
					wantCode(t, err, apierror.InvalidParams)
					if n := len(s.ListApps()); n != before {
						t.Fatalf("a refused app was stored: %d apps, was %d", n, before)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if app.Name != tc.req.Name || app.Description != tc.req.Description || app.Status != apifabric.StatusActive {
					t.Fatalf("created %+v", app.App)
				}
			})
		}
	})

	t.Run("update", func(t *testing.T) {
		app := createApp(t, s)
		for _, tc := range []struct {
			name string
			req  apifabric.UpdateAppRequest
			want *apierror.Error // nil: accepted
		}{
			{"nothing", apifabric.UpdateAppRequest{}, apierror.InvalidParams},
			{"empty name", apifabric.UpdateAppRequest{Name: str("")}, apierror.InvalidParams},
			{"65-character name", apifabric.UpdateAppRequest{Name: str(strings.Repeat("n", 65))}, apierror.InvalidParams},
			{"control character in name", apifabric.UpdateAppRequest{Name: str("a\x00")}, apierror.InvalidParams},
			{"257-character description", apifabric.UpdateAppRequest{Description: str(strings.Repeat("d", 257))}, apierror.InvalidParams},
			{"unknown status", apifabric.UpdateAppRequest{Status: str("paused")}, apierror.InvalidParams},
			{"empty status", apifabric.UpdateAppRequest{Status: str("")}, apierror.InvalidParams},
			{"upper-case status", apifabric.UpdateAppRequest{Status: str("Active")}, apierror.InvalidParams},
			{"valid name with a bad status", apifabric.UpdateAppRequest{Name: str("ok"), Status: str("x")}, apierror.InvalidParams},
			{"name", apifabric.UpdateAppRequest{Name: str(strings.Repeat("n", 64))}, nil},
			{"empty description", apifabric.UpdateAppRequest{Description: str("")}, nil},
			{"inactive", apifabric.UpdateAppRequest{Status: str(apifabric.StatusInactive)}, nil},
			{"active", apifabric.UpdateAppRequest{Status: str(apifabric.StatusActive)}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before, err := s.GetApp(app.AppKey)
				if err != nil {
					t.Fatal(err)
				}
				got, err := s.UpdateApp(ctx, admin, app.AppKey, tc.req)
				after, _ := s.GetApp(app.AppKey)
				if tc.want != nil {
					wantCode(t, err, tc.want)
					if after != before {
						t.Fatalf("refused update changed %+v to %+v", before, after)
					}
					return
				}
				if err != nil || got != after {
					t.Fatalf("update answered %+v, %v; stored %+v", got, err, after)
				}
				for _, f := range []struct {
					want *string
					got  string
				}{
					{tc.req.Name, after.Name}, {tc.req.Description, after.Description}, {tc.req.Status, after.Status},
				} {
					if f.want != nil && *f.want != f.got {
						t.Fatalf("update to %q left %q", *f.want, f.got)
					}
				}
			})
		}
		_, err := s.UpdateApp(ctx, admin, "nosuch", apifabric.UpdateAppRequest{Name: str("x")})
		wantCode(t, err, apierror.NotFound)
	})
}

// TestRotationRules covers graceSeconds (0 to 86400) and how long each
// secret, and the AccessTokens obtained with it, keeps working: the
// rotated-out one until the grace ends, to the millisecond; any older one
// not at all.
func TestRotationRules(t *testing.T) {
	ctx := context.Background()

	t.Run("grace bounds", func(t *testing.T) {
		s, _ := newService(t)
		app := createApp(t, s)
		for grace, ok := range map[int]bool{-1: false, 0: true, 1: true, 86400: true, 86401: false} {
			_, err := s.RotateSecret(ctx, admin, app.AppKey, apifabric.RotateSecretRequest{GraceSeconds: grace})
			if ok && err != nil {
				t.Errorf("graceSeconds %d: %v", grace, err)
			}
			if !ok && !errors.Is(err, apierror.InvalidParams) {
				t.Errorf("graceSeconds %d: want 400001, got %v", grace, err)
			}
		}
		_, err := s.RotateSecret(ctx, admin, "nosuch", apifabric.RotateSecretRequest{})
		wantCode(t, err, apierror.NotFound)
	})

	for _, tc := range []struct {
		name      string
		grace     int
		after     time.Duration // time from the rotation to the check
		oldWorks  bool
		twoRounds bool // rotate again (same grace) before checking the first secret
	}{
		{"no grace", 0, 0, false, false},
		{"within the grace", 60, 0, true, false},
		{"last millisecond of the grace", 60, 60*time.Second - time.Millisecond, true, false},
		{"end of the grace", 60, 60 * time.Second, false, false},
		{"one second of grace, ended", 1, time.Second, false, false},
		{"longest grace", 86400, 86400*time.Second - time.Millisecond, true, false},
		{"secret two rotations old", 60, 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, clk := newService(t)
			app := createApp(t, s)
			hour := "3600"
			resp, err := s.TokenByAkSk(ctx, apifabric.TokenRequest{AppKey: app.AppKey, AppSecret: app.AppSecret, Expire: &hour}, "")
			if err != nil {
				t.Fatal(err)
			}
			oldAuth := "Bearer " + resp.AccessToken
			if _, err := s.Verify(app.AppKey, oldAuth); err != nil { // cached before the rotation
				t.Fatal(err)
			}
			sec, err := s.RotateSecret(ctx, admin, app.AppKey, apifabric.RotateSecretRequest{GraceSeconds: tc.grace})
			if err != nil {
				t.Fatal(err)
			}
			if tc.twoRounds {
				if sec, err = s.RotateSecret(ctx, admin, app.AppKey, apifabric.RotateSecretRequest{GraceSeconds: tc.grace}); err != nil {
					t.Fatal(err)
				}
			}
			clk.Advance(tc.after)
			_, tokErr := s.TokenByAkSk(ctx, apifabric.TokenRequest{AppKey: app.AppKey, AppSecret: app.AppSecret}, "")
			_, verErr := s.Verify(app.AppKey, oldAuth)
			if tc.oldWorks {
				if tokErr != nil {
					t.Fatalf("old secret: %v", tokErr)
				}
				if tc.after < time.Hour && verErr != nil { // later, the old token has expired of itself
					t.Fatalf("token of the old secret: %v", verErr)
				}
			} else {
				wantCode(t, tokErr, apierror.InvalidAppCredentials)
				wantCode(t, verErr, apierror.AccessTokenInvalid)
			}
			if _, err := s.Verify(app.AppKey, "Bearer "+token(t, s, app.AppKey, sec.AppSecret)); err != nil {
				t.Fatalf("token of the new secret: %v", err)
			}
		})
	}
}

// TestAccessTokenRules covers the expiry of AccessTokens (at least the
// lifetime asked for, refused from exp on, cached or not) and the app
// key they must be presented with.
func TestAccessTokenRules(t *testing.T) {
	ctx := context.Background()

	t.Run("expiry", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			offset time.Duration // of the issue time past a whole second
			expire string
		}{
			{"whole second", 0, "60"},
			{"fractional second", 250 * time.Millisecond, "60"},
			{"one second", 999 * time.Millisecond, "1"},
			{"longest", 1, "3600"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s, clk := newService(t)
				app := createApp(t, s)
				next := clk.Now().Truncate(time.Second).Add(time.Second) // the next whole second
				clk.Advance(next.Add(tc.offset).Sub(clk.Now()))
				issued := clk.Now()
				auth := func() string {
					resp, err := s.TokenByAkSk(ctx, apifabric.TokenRequest{AppKey: app.AppKey, AppSecret: app.AppSecret, Expire: &tc.expire}, "")
					if err != nil {
						t.Fatal(err)
					}
					return "Bearer " + resp.AccessToken
				}
				cached, late := auth(), auth()
				a, err := s.Verify(app.AppKey, cached)
				if err != nil {
					t.Fatal(err)
				}
				ttl, _ := time.ParseDuration(tc.expire + "s")
				exp := issued.Add(ttl).Truncate(time.Second)
				if exp.Before(issued.Add(ttl)) {
					exp = exp.Add(time.Second)
				}
				if !a.Expires.Equal(exp) {
					t.Fatalf("expires %v, want %v: the first whole second at or after issue + %v", a.Expires, exp, ttl)
				}
				clk.Advance(exp.Sub(clk.Now()) - time.Nanosecond)
				if _, err := s.Verify(app.AppKey, cached); err != nil {
					t.Fatalf("cached token just before exp: %v", err)
				}
				clk.Advance(time.Nanosecond)
				for name, tok := range map[string]string{"cached": cached, "never verified": late} {
					_, err := s.Verify(app.AppKey, tok)
					if !errors.Is(err, apierror.AccessTokenExpired) {
						t.Fatalf("%s token at exp: want 401503, got %v", name, err)
					}
				}
			})
		}
	})

	t.Run("app key", func(t *testing.T) {
		s, _ := newService(t)
		app, other := createApp(t, s), createApp(t, s)
		auth := "Bearer " + token(t, s, app.AppKey, app.AppSecret)
		for _, tc := range []struct {
			name, key string
			want      *apierror.Error
		}{
			{"its own", app.AppKey, nil},
			{"missing", "", apierror.AppKeyMismatch},
			{"another app's", other.AppKey, apierror.AppKeyMismatch},
			{"unknown", "00000000-0000-0000-0000-000000000000", apierror.AppKeyMismatch},
			{"upper case", strings.ToUpper(app.AppKey), apierror.AppKeyMismatch},
			{"with a space", app.AppKey + " ", apierror.AppKeyMismatch},
		} {
			t.Run(tc.name, func(t *testing.T) {
				a, err := s.Verify(tc.key, auth)
				if tc.want != nil {
					wantCode(t, err, tc.want)
					return
				}
				if err != nil || a.AppKey != app.AppKey {
					t.Fatalf("verify: %+v, %v", a, err)
				}
			})
		}
	})
}

// TestTokenByAkSkOneAnswer checks that every credential failure gets the
// very same error: nothing tells an unknown key from a wrong secret or an
// app that may not have tokens.
func TestTokenByAkSkOneAnswer(t *testing.T) {
	s, clk := newService(t)
	ctx := context.Background()
	app, other, off, gone, rotated := createApp(t, s), createApp(t, s), createApp(t, s), createApp(t, s), createApp(t, s)
	inactive := apifabric.StatusInactive
	if _, err := s.UpdateApp(ctx, admin, off.AppKey, apifabric.UpdateAppRequest{Status: &inactive}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteApp(ctx, admin, gone.AppKey); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateSecret(ctx, admin, rotated.AppKey, apifabric.RotateSecretRequest{GraceSeconds: 1}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	var first error
	for _, tc := range []struct{ name, key, secret string }{
		{"unknown key", "00000000-0000-0000-0000-000000000000", app.AppSecret},
		{"secret as key", app.AppSecret, app.AppSecret},
		{"wrong secret", app.AppKey, app.AppSecret + "x"},
		{"another app's secret", app.AppKey, other.AppSecret},
		{"inactive app", off.AppKey, off.AppSecret},
		{"deleted app", gone.AppKey, gone.AppSecret},
		{"secret rotated out", rotated.AppKey, rotated.AppSecret},
	} {
		_, err := s.TokenByAkSk(ctx, apifabric.TokenRequest{AppKey: tc.key, AppSecret: tc.secret}, "127.0.0.1")
		wantCode(t, err, apierror.InvalidAppCredentials)
		if first == nil {
			first = err
		} else if !reflect.DeepEqual(err, first) {
			t.Errorf("%s: %#v differs from %#v", tc.name, err, first)
		}
	}
	if _, err := s.TokenByAkSk(ctx, apifabric.TokenRequest{AppKey: app.AppKey, AppSecret: app.AppSecret}, ""); err != nil {
		t.Fatalf("right credentials: %v", err)
	}
}
