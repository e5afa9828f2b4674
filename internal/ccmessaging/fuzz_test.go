package ccmessaging

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/apifabric"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/engine"
	"github.com/gatehouse/gatehouse/internal/store/bolt"
	"github.com/gatehouse/gatehouse/internal/testclock"
)

// FuzzParseToken feeds token strings to the minter's parser, seeded with
// tokens minted under the fixed test key. A token that parses is one the
// minter mints from its claims, byte for byte: no other spelling of a
// token (in its base64 or its JSON) is accepted.
func FuzzParseToken(f *testing.F) {
	m := minter{key: []byte("0123456789abcdef0123456789abcdef")}
	rec := fullRecord()
	f.Add(m.mint(&rec, rec.Gen, rec.Issued, rec.Exp))
	f.Add(m.mint(&rec, rec.Gen-1, rec.PrevIssued, rec.PrevExp))
	f.Fuzz(func(t *testing.T, tok string) {
		c, ok := m.parse(tok)
		if !ok {
			return
		}
		r := sessionRecord{Channel: c.Channel, User: c.User, ID: c.Session}
		if again := m.mint(&r, c.Gen, c.IssuedAt.Unix(), c.ExpiresAt.Unix()); again != tok {
			t.Fatalf("parsed token is not in canonical form:\n got %q\nwant %q", tok, again)
		}
	})
}

// fuzzWorld is a Service with an app, a channel open to it and the app's
// AccessToken, over a bolt store, with a frozen clock so that no token
// expires however long fuzzing runs.
type fuzzWorld struct {
	s       *Service
	app     *apifabric.CreatedApp
	access  string // Authorization header of the app
	channel string
}

func newFuzzWorld(f *testing.F) *fuzzWorld {
	f.Helper()
	st, err := bolt.Open(filepath.Join(f.TempDir(), "gatehouse.db"), bolt.Options{})
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	clk := testclock.New(time.Unix(1_700_000_000, 0))
	logger := slog.New(slog.DiscardHandler)
	log := audit.New(nil, logger, 0)
	fabric, err := apifabric.New(ctx, st, log, logger, apifabric.Options{Now: clk.Now})
	if err != nil {
		f.Fatal(err)
	}
	s, err := New(ctx, st, fabric, log, logger, Options{Now: clk.Now})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close(); cancel(); st.Close() })
	admin := authz.Caller{Account: engine.RootAccount}
	app, err := fabric.CreateApp(ctx, admin, apifabric.CreateAppRequest{Name: "crm"})
	if err != nil {
		f.Fatal(err)
	}
	ch, err := s.CreateChannel(ctx, admin, ChannelRequest{Name: "web", AppKeys: []string{app.AppKey}, SessionIdleTimeout: "2h"})
	if err != nil {
		f.Fatal(err)
	}
	tok, err := fabric.TokenByAkSk(ctx, apifabric.TokenRequest{AppKey: app.AppKey, AppSecret: app.AppSecret}, "127.0.0.1")
	if err != nil {
		f.Fatal(err)
	}
	return &fuzzWorld{s: s, app: app, access: "Bearer " + tok.AccessToken, channel: ch.ID}
}

// apply opens the session of user and returns its token.
func (w *fuzzWorld) apply(f *testing.F, user string) string {
	f.Helper()
	a, err := w.s.VerifyApp(w.app.AppKey, w.access)
	if err != nil {
		f.Fatal(err)
	}
	tok, err := w.s.ApplyToken(context.Background(), a, ApplyRequest{UserID: user, UserName: "User " + user, ChannelID: w.channel, Locale: "en_US"}, "127.0.0.1")
	if err != nil {
		f.Fatal(err)
	}
	return tok
}

// wantClientError fails t unless err is a 4xx API error that echoes none
// of inputs.
func wantClientError(t *testing.T, err error, inputs ...string) {
	t.Helper()
	ae, ok := apierror.As(err)
	if !ok {
		t.Fatalf("returned %T %v, not an API error", err, err)
	}
	if st := ae.Status(); st < 400 || st >= 500 {
		t.Fatalf("refused with status %d (%s %s)", st, ae.Code, ae.Detail)
	}
	for _, in := range inputs {
		if len(in) >= 8 && strings.Contains(ae.Message+ae.Detail, in) {
			t.Fatalf("the error %q echoes the input %q", ae.Message+" "+ae.Detail, in)
		}
	}
}

// FuzzVerify feeds the three credentials of a protected ccmessaging
// request (x-app-key, Authorization, ccmessaging-token) to Verify, seeded
// with a live session's, another app's, and an ended session's. What
// verifies is the session's current token exactly, for its own app; every
// refusal is a 4xx API error that echoes no credential.
func FuzzVerify(f *testing.F) {
	w := newFuzzWorld(f)
	ended := w.apply(f, "alice")
	live := w.apply(f, "alice")
	other := w.apply(f, "bob")
	f.Add(w.app.AppKey, w.access, live)
	f.Add(w.app.AppKey, w.access, other)
	f.Add(w.app.AppKey, w.access, ended)
	f.Add("other-app", w.access, live)
	f.Add(w.app.AppKey, "Bearer "+live, live)
	f.Add(w.app.AppKey, w.access, "")
	f.Fuzz(func(t *testing.T, appKey, authorization, token string) {
		id, renewed, err := w.s.Verify(context.Background(), Credentials{AppKey: appKey, Authorization: authorization, Token: token, IP: "127.0.0.1"})
		if err != nil {
			wantClientError(t, err, appKey, authorization, token)
			return
		}
		if renewed != "" {
			t.Fatalf("a token was renewed under a frozen clock")
		}
		if id.AppKey != appKey || appKey != w.app.AppKey {
			t.Fatalf("identity of app %q for x-app-key %q", id.AppKey, appKey)
		}
		sess := w.s.sessions.get(id.ChannelID, id.UserID)
		if sess == nil {
			t.Fatalf("verified a token of no session: %+v", id)
		}
		rec := sess.record()
		if cur := w.s.minter.mint(&rec, rec.Gen, rec.Issued, rec.Exp); token != cur {
			t.Fatalf("verified a token that is not the session's current one:\n got %q\nwant %q", token, cur)
		}
	})
}

// FuzzApplyToken feeds applyToken bodies, decoded as the endpoint decodes
// them. A token is issued exactly when the fields are valid and name the
// app's channel, and it then verifies as that user's session with the
// name and locale asked for; every refusal is a 4xx API error that echoes
// no field.
func FuzzApplyToken(f *testing.F) {
	w := newFuzzWorld(f)
	a, err := w.s.VerifyApp(w.app.AppKey, w.access)
	if err != nil {
		f.Fatal(err)
	}
	body := func(user, name, channel, locale string) []byte {
		b, _ := json.Marshal(ApplyRequest{UserID: user, UserName: name, ChannelID: channel, Locale: locale})
		return b
	}
	f.Add(body("alice", "Alice", w.channel, "en_US"))
	f.Add(body("bob", "Bob", w.channel, ""))
	f.Add(body("carol", "Carol Ω", w.channel, "es-419"))
	f.Add(body("dave", "Dave", w.channel, "xx_US"))
	f.Add(body(strings.Repeat("u", MaxUserIDLen+1), "U", w.channel, "zh"))
	f.Add(body("erin", "Erin", "999999", "zh"))
	f.Add(body("frank\x00", "Frank", w.channel, "zh_CN"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var req ApplyRequest
		if json.Unmarshal(b, &req) != nil {
			return
		}
		tok, err := w.s.ApplyToken(context.Background(), a, req, "127.0.0.1")
		want := req.validate() == nil && req.ChannelID == w.channel
		if (err == nil) != want {
			t.Fatalf("request %+v: err %v, want success %v", req, err, want)
		}
		if err != nil {
			wantClientError(t, err, req.UserID, req.UserName, req.ChannelID, req.Locale)
			return
		}
		id, _, err := w.s.Verify(context.Background(), Credentials{AppKey: w.app.AppKey, Authorization: w.access, Token: tok})
		if err != nil {
			t.Fatalf("the issued token does not verify: %v", err)
		}
		if id.UserID != req.UserID || id.UserName != req.UserName || id.ChannelID != req.ChannelID || id.Locale != req.Locale {
			t.Fatalf("identity %+v for request %+v", id, req)
		}
	})
}
