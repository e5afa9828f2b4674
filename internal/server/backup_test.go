package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/internal/store/backup"
	"github.com/gatehouse/gatehouse/internal/store/etcd/etcdtest"
	"github.com/gatehouse/gatehouse/pkg/client"
)

const alicePW = "Alice-Passw0rd!"

// fixture is what exists before the backup: tokens of the three families
// and an app and channel to open sessions on.
type fixture struct {
	root, alice    string // engine tokens
	appKey, secret string
	access         string // AccessToken of the app
	channel        string
	sessions       map[string]string // user → ccmessaging-token
	secrets        []string          // everything that must never be logged
}

// call sends a request and decodes a 200 answer into out.
func call(hc *http.Client, method, url, token string, in, out any, headers ...string) error {
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// apply opens a session of user and returns its ccmessaging-token.
func (fx *fixture) apply(hc *http.Client, base, user string) (string, error) {
	var out struct{ Token string }
	err := call(hc, "POST", base+"/apiaccess/ccmessaging/applyToken", fx.access,
		map[string]string{"userId": user, "userName": "User " + user, "channelId": fx.channel, "locale": "en_US"}, &out,
		"x-app-key", fx.appKey)
	return out.Token, err
}

// setup creates alice, an app with its AccessToken, a channel and
// sessions sessions.
func setup(t *testing.T, srv *servertest.Server, sessions int) *fixture {
	t.Helper()
	hc := http.DefaultClient
	fx := &fixture{root: srv.Root(), sessions: map[string]string{}}
	must(t, call(hc, "POST", srv.Base+"/v4/accounts", fx.root, map[string]any{"name": "alice", "password": alicePW, "roles": []string{"developer"}}, nil))
	fx.alice = srv.Login("alice", alicePW)
	var app struct{ AppKey, AppSecret string }
	must(t, call(hc, "POST", srv.Base+"/v4/apps", fx.root, map[string]string{"name": "crm"}, &app))
	fx.appKey, fx.secret = app.AppKey, app.AppSecret
	var at struct{ AccessToken string }
	must(t, call(hc, "POST", srv.Base+"/apigovernance/api/oauth/tokenByAkSk", "", map[string]string{"app_key": fx.appKey, "app_secret": fx.secret}, &at))
	fx.access = at.AccessToken
	var ch struct{ ID string }
	must(t, call(hc, "POST", srv.Base+"/v4/channels", fx.root, map[string]any{"name": "web", "appKeys": []string{fx.appKey}}, &ch))
	fx.channel = ch.ID
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < sessions; i += 8 {
				user := fmt.Sprintf("setup-%d", i)
				tok, err := fx.apply(hc, srv.Base, user)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				fx.sessions[user] = tok
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	fx.secrets = []string{servertest.RootPassword, alicePW, fx.root, fx.alice, fx.secret, fx.access}
	for _, tok := range fx.sessions {
		fx.secrets = append(fx.secrets, tok)
	}
	return fx
}

// write is one acknowledged write of the load: an account, an app or a
// session, and when its answer arrived.
type write struct {
	kind, id, token string
	ack             time.Time
}

// loadResult is what the load wrote, and its failures.
type loadResult struct {
	mu     sync.Mutex
	writes []write
	errs   []error
}

// load creates accounts, apps and sessions through the API from workers
// goroutines until stop is closed, recording every acknowledged write.
func load(base string, fx *fixture, workers int, stop <-chan struct{}) (*loadResult, func()) {
	res := &loadResult{}
	hc := &http.Client{Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var wr write
				var err error
				switch i % 10 { // mostly sessions: accounts and apps hash a password or secret
				case 0:
					wr = write{kind: "account", id: fmt.Sprintf("loadw%dn%d", w, i)}
					err = call(hc, "POST", base+"/v4/accounts", fx.root,
						map[string]any{"name": wr.id, "password": "Passw0rd!" + wr.id, "roles": []string{"developer"}}, nil)
				case 5:
					var app struct{ AppKey string }
					err = call(hc, "POST", base+"/v4/apps", fx.root, map[string]string{"name": fmt.Sprintf("load %d %d", w, i)}, &app)
					wr = write{kind: "app", id: app.AppKey}
				default:
					wr = write{kind: "session", id: fmt.Sprintf("load-%d-%d", w, i)}
					wr.token, err = fx.apply(hc, base, wr.id)
				}
				wr.ack = time.Now()
				res.mu.Lock()
				if err != nil {
					res.errs = append(res.errs, err)
				} else {
					res.writes = append(res.writes, wr)
				}
				res.mu.Unlock()
			}
		})
	}
	return res, wg.Wait
}

// acked returns the writes acknowledged before t, and how many were
// acknowledged from t to end.
func (r *loadResult) acked(t, end time.Time) (before []write, during int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range r.writes {
		switch {
		case w.ack.Before(t):
			before = append(before, w)
		case !w.ack.After(end):
			during++
		}
	}
	return before, during
}

// waitWrites waits until the load acknowledged n writes.
func (r *loadResult) waitWrites(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		r.mu.Lock()
		got, errs := len(r.writes), r.errs
		r.mu.Unlock()
		if len(errs) > 0 {
			t.Fatalf("load: %v", errs[0])
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the load acknowledged %d writes in a minute", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// backupUnderLoad runs the load against srv, takes a backup through the
// API once it is under way, and returns the backup and the writes
// acknowledged before the backup started.
func backupUnderLoad(t *testing.T, srv *servertest.Server, fx *fixture) ([]byte, []write) {
	t.Helper()
	stop := make(chan struct{})
	res, wait := load(srv.Base, fx, 4, stop)
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
			wait()
		}
	}()
	res.waitWrites(t, 30)
	// Several backups back to back, for figures over more than a moment;
	// the last one is checked.
	const rounds = 5
	admin := client.NewAdmin(srv.Base, client.BearerToken(nil, fx.root))
	var (
		buf        bytes.Buffer
		start, end time.Time
		rev, n     int64
		busy       time.Duration
		during     int
	)
	for range rounds {
		buf.Reset()
		var err error
		start = time.Now()
		rev, n, err = admin.Backup(context.Background(), &buf)
		end = time.Now()
		if err != nil {
			t.Fatal(err)
		}
		_, d := res.acked(start, end)
		during += d
		busy += end.Sub(start)
	}
	res.mu.Lock()
	sofar := len(res.writes)
	res.mu.Unlock()
	res.waitWrites(t, sofar+10) // the load went on during and after the backups
	close(stop)
	wait()
	if len(res.errs) > 0 {
		t.Fatalf("load: %v", res.errs[0])
	}
	res.mu.Lock()
	total, loadStart, loadEnd := len(res.writes), res.writes[0].ack, res.writes[len(res.writes)-1].ack
	res.mu.Unlock()
	before, _ := res.acked(start, end)
	h, err := backup.Verify(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("backup under load (%s), the last of %d: %d records, %d bytes, revision %d, %v; "+
		"%d writes acknowledged during the %d backups (%v, %.0f/s; %.0f/s over the whole load of %d writes), %d before the last",
		h.Backend, rounds, h.Items, n, rev, end.Sub(start).Round(time.Microsecond),
		during, rounds, busy.Round(time.Millisecond), float64(during)/busy.Seconds(), float64(total)/loadEnd.Sub(loadStart).Seconds(), total, len(before))
	return buf.Bytes(), before
}

// verify checks a server started on a restored store: every write
// acknowledged before the backup is there, the tokens issued before it
// verify and logins work.
func verify(t *testing.T, srv *servertest.Server, fx *fixture, before []write) {
	t.Helper()
	hc := http.DefaultClient
	must(t, call(hc, "GET", srv.Base+"/v4/self-perms", fx.root, nil, nil))
	must(t, call(hc, "GET", srv.Base+"/v4/self-perms", fx.alice, nil, nil))
	srv.Login("alice", alicePW)
	srv.Root()
	session := func(tok string) error {
		return call(hc, "GET", srv.Base+"/apiaccess/ccmessaging/session", fx.access, nil, nil,
			"x-app-key", fx.appKey, "ccmessaging-token", tok)
	}
	for user, tok := range fx.sessions {
		if err := session(tok); err != nil {
			t.Fatalf("the ccmessaging-token of %s: %v", user, err)
		}
	}
	var missing []string
	for _, w := range before {
		var err error
		switch w.kind {
		case "account":
			err = call(hc, "GET", srv.Base+"/v4/accounts/"+w.id, fx.root, nil, nil)
		case "app":
			err = call(hc, "GET", srv.Base+"/v4/apps/"+w.id, fx.root, nil, nil)
		case "session":
			err = session(w.token)
		}
		if err != nil {
			missing = append(missing, fmt.Sprintf("%s %s (acknowledged %s): %v", w.kind, w.id, w.ack.Format(time.StampMicro), err))
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d writes acknowledged before the backup are missing:\n%s", len(missing), len(before), strings.Join(missing, "\n"))
	}
	var app struct{ AccessToken string }
	must(t, call(hc, "POST", srv.Base+"/apigovernance/api/oauth/tokenByAkSk", "", map[string]string{"app_key": fx.appKey, "app_secret": fx.secret}, &app))
}

// noSecrets fails the test when a password, secret or token reached the logs.
func noSecrets(t *testing.T, logs *servertest.LogBuffer, fx *fixture) {
	t.Helper()
	out := logs.String()
	if !strings.Contains(out, "store.backup") {
		t.Fatal("the backup was not audited in the log")
	}
	for _, s := range fx.secrets {
		if strings.Contains(out, s) {
			t.Fatalf("a secret or token is in the log")
		}
	}
}

func logged(logs *servertest.LogBuffer) func(*server.Config) {
	return func(c *server.Config) { c.Logger = slog.New(slog.NewJSONHandler(logs, nil)) }
}

// restore restores raw into the store mod configures.
func restore(t *testing.T, raw []byte, logs *servertest.LogBuffer, mod func(*server.Config)) backup.Result {
	t.Helper()
	cfg := server.DefaultConfig()
	logged(logs)(&cfg)
	mod(&cfg)
	_, res, err := server.Restore(context.Background(), cfg, bytes.NewReader(raw), false)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestBackupBoltUnderLoad: a backup of a bolt store taken while accounts,
// apps and sessions are written holds every write acknowledged before it
// started (many of them then only in the write-ahead log), restores into
// a fresh data directory and into an etcd prefix, and servers on either
// verify the tokens issued before it.
func TestBackupBoltUnderLoad(t *testing.T) {
	logs := &servertest.LogBuffer{}
	src := servertest.Start(t, logged(logs))
	fx := setup(t, src, 300)
	raw, before := backupUnderLoad(t, src, fx)

	dir := filepath.Join(t.TempDir(), "restored")
	restore(t, raw, logs, func(c *server.Config) { c.DataDir = dir })
	verify(t, servertest.Start(t, func(c *server.Config) { logged(logs)(c); c.DataDir = dir }), fx, before)

	cluster := etcdtest.Start(t, t.TempDir(), 1)
	onEtcd := func(c *server.Config) {
		c.Store, c.EtcdEndpoints, c.EtcdPrefix = "etcd", cluster.Endpoints(), "/from-bolt/"
	}
	restore(t, raw, logs, onEtcd)
	verify(t, servertest.Start(t, func(c *server.Config) { logged(logs)(c); onEtcd(c) }), fx, before)
	noSecrets(t, logs, fx)
}

// TestBackupEtcdUnderLoad: the same from an etcd store, restored into an
// empty prefix and into a bolt data directory; a non-empty prefix and a
// damaged backup are refused with nothing written.
func TestBackupEtcdUnderLoad(t *testing.T) {
	logs := &servertest.LogBuffer{}
	cluster := etcdtest.Start(t, t.TempDir(), 1)
	prefix := func(p string) func(*server.Config) {
		return func(c *server.Config) { c.Store, c.EtcdEndpoints, c.EtcdPrefix = "etcd", cluster.Endpoints(), p }
	}
	src := servertest.Start(t, func(c *server.Config) { logged(logs)(c); prefix("/src/")(c) })
	fx := setup(t, src, 100)
	raw, before := backupUnderLoad(t, src, fx)

	cli, err := clientv3.New(clientv3.Config{Endpoints: cluster.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	count := func(p string) int64 {
		t.Helper()
		resp, err := cli.Get(context.Background(), p, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		return resp.Count
	}
	for name, bad := range map[string][]byte{"truncated": raw[:len(raw)/2], "corrupted": append(bytes.Clone(raw[:100]), raw[101:]...)} {
		cfg := server.DefaultConfig()
		prefix("/damaged/")(&cfg)
		if _, _, err := server.Restore(context.Background(), cfg, bytes.NewReader(bad), false); !errors.Is(err, backup.ErrInvalid) {
			t.Fatalf("a %s backup: %v", name, err)
		}
	}
	if n := count("/damaged/"); n != 0 {
		t.Fatalf("refused backups wrote %d keys", n)
	}
	srcKeys := count("/src/")
	cfg := server.DefaultConfig()
	prefix("/src/")(&cfg)
	if _, _, err := server.Restore(context.Background(), cfg, bytes.NewReader(raw), false); !errors.Is(err, backup.ErrNotEmpty) {
		t.Fatalf("restore into a prefix in use: %v", err)
	}
	if n := count("/src/"); n < srcKeys {
		t.Fatalf("a refused restore changed the prefix: %d keys, were %d", n, srcKeys)
	}

	restore(t, raw, logs, prefix("/dst/"))
	verify(t, servertest.Start(t, func(c *server.Config) { logged(logs)(c); prefix("/dst/")(c) }), fx, before)

	dir := filepath.Join(t.TempDir(), "restored")
	restore(t, raw, logs, func(c *server.Config) { c.DataDir = dir })
	verify(t, servertest.Start(t, func(c *server.Config) { logged(logs)(c); c.DataDir = dir }), fx, before)
	noSecrets(t, logs, fx)
}

// TestRestoreRefusals: a bolt data directory a server holds is refused,
// a non-empty one without replace, and a damaged backup leaves a fresh
// directory without a store file.
func TestRestoreRefusals(t *testing.T) {
	var live string
	src := servertest.Start(t, func(c *server.Config) { live = c.DataDir })
	var buf bytes.Buffer
	if _, _, err := client.NewAdmin(src.Base, client.BearerToken(nil, src.Root())).Backup(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	cfg := server.DefaultConfig()
	cfg.DataDir = live
	if _, _, err := server.Restore(context.Background(), cfg, bytes.NewReader(raw), true); err == nil || !strings.Contains(err.Error(), "in use by a running Gatehouse") {
		t.Fatalf("restore into a running server's directory: %v", err)
	}
	src.Stop()
	if _, _, err := server.Restore(context.Background(), cfg, bytes.NewReader(raw), false); !errors.Is(err, backup.ErrNotEmpty) {
		t.Fatalf("restore into a non-empty directory: %v", err)
	}
	if _, res, err := server.Restore(context.Background(), cfg, bytes.NewReader(raw), true); err != nil || res.Replaced == 0 {
		t.Fatalf("restore with replace: %+v %v", res, err)
	}
	cfg.DataDir = filepath.Join(t.TempDir(), "fresh")
	for n := range len(raw) {
		if _, _, err := server.Restore(context.Background(), cfg, bytes.NewReader(raw[:n]), false); !errors.Is(err, backup.ErrInvalid) {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}
	if _, err := os.Stat(cfg.DataDir); !os.IsNotExist(err) {
		t.Fatalf("refused restores created %s (%v)", cfg.DataDir, err)
	}
}
