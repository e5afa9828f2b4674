package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/pkg/client"
)

// cliEnv runs the command line in process against a real server, with a
// config directory of its own.
type cliEnv struct {
	t   *testing.T
	srv *servertest.Server
}

func newCLIEnv(t *testing.T) *cliEnv {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	t.Setenv("GATEHOUSE_SERVER", "")
	t.Setenv("GATEHOUSE_CA_FILE", "")
	return &cliEnv{t: t, srv: servertest.Start(t, nil)}
}

// run runs gatehouse args with stdin and returns what it wrote and its
// exit status.
func (e *cliEnv) run(stdin string, args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	var out, errb bytes.Buffer
	code = execute(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

// ok runs a command that must succeed and returns its stdout.
func (e *cliEnv) ok(stdin string, args ...string) string {
	e.t.Helper()
	out, errs, code := e.run(stdin, args...)
	if code != 0 {
		e.t.Fatalf("gatehouse %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// fail runs a command that must fail with exit status 1 and returns its
// stderr, which must contain want.
func (e *cliEnv) fail(want, stdin string, args ...string) string {
	e.t.Helper()
	out, errs, code := e.run(stdin, args...)
	if code != 1 {
		e.t.Fatalf("gatehouse %s: exit %d, want 1\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	if !strings.Contains(errs, want) {
		e.t.Fatalf("gatehouse %s: stderr %q lacks %q", strings.Join(args, " "), errs, want)
	}
	return errs
}

func (e *cliEnv) login() {
	e.t.Helper()
	e.ok(servertest.RootPassword+"\n", "login", "--server", e.srv.Base, "--name", "root", "--password-stdin")
}

// jsonOut runs a command with -o json and decodes its stdout into v.
func (e *cliEnv) jsonOut(v any, args ...string) {
	e.t.Helper()
	out := e.ok("", append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		e.t.Fatalf("gatehouse %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func credentialsFile(t *testing.T) string {
	t.Helper()
	p, err := credentialsPath()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func storedToken(t *testing.T) string {
	t.Helper()
	creds, err := loadCredentials()
	if err != nil {
		t.Fatal(err)
	}
	return creds.Servers[creds.Current].Token
}

func TestCLIVersionFlag(t *testing.T) {
	e := &cliEnv{t: t}
	if out := e.ok("", "--version"); !strings.HasPrefix(out, "gatehouse "+version+" (commit ") {
		t.Fatalf("--version printed %q", out)
	}
	if a, b := e.ok("", "--version"), e.ok("", "version"); a != b {
		t.Fatalf("--version %q and version %q differ", a, b)
	}
}

func TestCLILoginStoresOnlyTheTokenOwnerOnly(t *testing.T) {
	e := newCLIEnv(t)
	e.fail("not logged in", "", "account", "list")
	e.fail("401202", "Wrong-Passw0rd!\n", "login", "--server", e.srv.Base, "--name", "root", "--password-stdin")
	if _, err := os.Stat(credentialsFile(t)); !os.IsNotExist(err) {
		t.Fatalf("a failed login left credentials: %v", err)
	}
	out := e.ok(servertest.RootPassword+"\n", "login", "--server", e.srv.Base, "--name", "root", "--password-stdin")
	if !strings.Contains(out, "Logged in to "+e.srv.Base+" as root") {
		t.Fatalf("login said %q", out)
	}
	fi, err := os.Stat(credentialsFile(t))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials mode %v, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(filepath.Dir(credentialsFile(t))); di.Mode().Perm() != 0o700 {
		t.Fatalf("credentials directory mode %v, want 0700", di.Mode().Perm())
	}
	b, _ := os.ReadFile(credentialsFile(t))
	if bytes.Contains(b, []byte(servertest.RootPassword)) {
		t.Fatal("the credentials file holds the password")
	}
	if r := e.srv.Call("GET", "/v4/self-perms", storedToken(t), nil); r.Status != 200 {
		t.Fatalf("stored token refused: %d %s", r.Status, r.Body)
	}
	// No terminal and no --name or --password-stdin: a clear refusal.
	e.fail("--name is required", "", "login", "--server", e.srv.Base)
	e.fail("use --password-stdin", "", "login", "--server", e.srv.Base, "--name", "root")
	e.fail("give the URL with http://", "", "login", "--server", "127.0.0.1:1", "--name", "root", "--password-stdin")
}

func TestCLIPasswordFlagWarns(t *testing.T) {
	e := newCLIEnv(t)
	_, errs, code := e.run("", "login", "--server", e.srv.Base, "--name", "root", "--password", servertest.RootPassword)
	if code != 0 || !strings.Contains(errs, "WARNING! A password on the command line is insecure") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	if strings.Contains(errs, servertest.RootPassword) {
		t.Fatal("the password was echoed")
	}
}

func TestCLIServerFromEnvironment(t *testing.T) {
	e := newCLIEnv(t)
	t.Setenv("GATEHOUSE_SERVER", e.srv.Base)
	e.ok(servertest.RootPassword+"\n", "login", "--name", "root", "--password-stdin")
	e.ok("", "account", "list")
	e.fail("not logged in to http://127.0.0.1:1", "", "account", "list", "--server", "http://127.0.0.1:1")
}

func TestCLILogoutRevokesTheToken(t *testing.T) {
	e := newCLIEnv(t)
	e.login()
	tok := storedToken(t)
	if out := e.ok("", "logout"); !strings.Contains(out, "Logged out of "+e.srv.Base) {
		t.Fatalf("logout said %q", out)
	}
	if r := e.srv.Call("GET", "/v4/self-perms", tok, nil); r.Status != 401 {
		t.Fatalf("token still valid after logout: %d", r.Status)
	}
	e.fail("not logged in", "", "account", "list")
	e.fail("not logged in", "", "logout")
}

func TestCLIExpiredLogin(t *testing.T) {
	e := newCLIEnv(t)
	e.login()
	// Age the stored token: the CLI reads iat/exp from it before use.
	creds, err := loadCredentials()
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Hour)
	claims, _ := json.Marshal(map[string]any{"account": "root", "iat": past.Add(-12 * time.Hour).Unix(), "exp": past.Unix()})
	creds.Servers[e.srv.Base].Token = "e30." + base64.RawURLEncoding.EncodeToString(claims) + ".sig"
	if err := creds.save(); err != nil {
		t.Fatal(err)
	}
	e.fail("the login of root to "+e.srv.Base+" expired at", "", "account", "list")

	// On a terminal the password is asked and the token renewed.
	asked := ""
	old := askPassword
	askPassword = func(_ io.Reader, _ io.Writer, prompt string) (string, bool, error) {
		asked = prompt
		return servertest.RootPassword, true, nil
	}
	t.Cleanup(func() { askPassword = old })
	if out := e.ok("", "account", "get", "root"); !strings.Contains(out, "root") {
		t.Fatalf("account get after renewal: %q", out)
	}
	if !strings.Contains(asked, "The login of root to "+e.srv.Base+" expires") {
		t.Fatalf("prompt %q", asked)
	}
	iat, exp, err := client.TokenTimes(storedToken(t))
	if err != nil || !exp.After(time.Now()) || exp.Sub(iat) != 12*time.Hour {
		t.Fatalf("renewed token: iat %v exp %v err %v", iat, exp, err)
	}
}

func TestCLIAPIErrors(t *testing.T) {
	e := newCLIEnv(t)
	e.login()
	e.ok("Dev-Passw0rd!\n", "account", "create", "dev", "--role", "developer", "--password-stdin")
	e.fail("409200", "Dev-Passw0rd!\n", "account", "create", "dev", "--role", "developer", "--password-stdin")
	e.fail("400200", "", "account", "get", "nobody")
	e.fail("400202", "Dev-Passw0rd!\n", "account", "create", "dev2", "--role", "nosuchrole", "--password-stdin")
	e.fail("403202", "", "account", "delete", "root")
	// A developer is denied accounts: the code is on stderr.
	e.ok("Dev-Passw0rd!\n", "login", "--server", e.srv.Base, "--name", "dev", "--password-stdin")
	e.fail("403205", "", "account", "list")
	// A revoked token points to login.
	if r := e.srv.Call("DELETE", "/v4/token", storedToken(t), nil); r.Status != 200 {
		t.Fatalf("revoke: %d", r.Status)
	}
	e.fail("401201", "", "app", "list")
	e.fail("run gatehouse login --server "+e.srv.Base, "", "app", "list")
}

func TestCLIBadFlags(t *testing.T) {
	e := newCLIEnv(t)
	e.login()
	e.fail(`unknown format "xml"`, "", "account", "list", "-o", "xml")
	e.fail(`required flag(s) "role" not set`, "", "account", "create", "x", "--password-stdin")
	e.fail("accepts 1 arg(s)", "", "account", "get")
	e.fail("unknown flag: --nope", "", "app", "list", "--nope")
	e.fail("nothing to update", "", "account", "update", "root")
	e.fail("want TYPES:VERBS", "", "role", "create", "r", "--perm", "app")
	e.fail("unknown command", "", "account", "frobnicate")
	e.fail("--password-stdin: no password on stdin", "", "account", "create", "x", "--role", "developer", "--password-stdin")
	e.fail("none of the others can be", "", "login", "--password", "a", "--password-stdin")
	e.fail("--ca-file", "", "account", "list", "--ca-file", filepath.Join(t.TempDir(), "missing.pem"))
}

// formats checks a read command in every output format: the table has
// header, JSON and YAML decode.
func (e *cliEnv) formats(header string, args ...string) {
	e.t.Helper()
	if out := e.ok("", args...); !strings.HasPrefix(out, header) {
		e.t.Fatalf("gatehouse %s: table %q does not start with %q", strings.Join(args, " "), out, header)
	}
	var v any
	e.jsonOut(&v, args...)
	out := e.ok("", append(args, "-o", "yaml")...)
	var y any
	if err := yaml.Unmarshal([]byte(out), &y); err != nil {
		e.t.Fatalf("gatehouse %s -o yaml: %v\n%s", strings.Join(args, " "), err, out)
	}
	jb, _ := json.Marshal(v)
	yb, _ := json.Marshal(y)
	if !bytes.Equal(jb, yb) {
		e.t.Fatalf("gatehouse %s: yaml %s and json %s differ", strings.Join(args, " "), yb, jb)
	}
}

func TestCLIAccountsRolesLocks(t *testing.T) {
	e := newCLIEnv(t)
	e.login()
	if out := e.ok("Alice-Passw0rd!\n", "account", "create", "alice", "--role", "developer", "--password-stdin"); out != "account alice created\n" {
		t.Fatalf("create said %q", out)
	}
	e.formats("NAME", "account", "list")
	e.formats("NAME", "account", "get", "alice")
	var accts []struct{ Name, Status string }
	e.jsonOut(&accts, "account", "list")
	if len(accts) != 2 || accts[0].Name != "alice" || accts[1].Name != "root" {
		t.Fatalf("accounts %+v", accts)
	}
	e.ok("", "account", "update", "alice", "--status", "inactive")
	var a struct{ Status string }
	e.jsonOut(&a, "account", "get", "alice")
	if a.Status != "inactive" {
		t.Fatalf("status %q", a.Status)
	}
	e.ok("", "account", "update", "alice", "--status", "active", "--role", "developer,admin")
	e.ok("Alice-Passw1rd!\n", "account", "passwd", "alice", "--password-stdin")
	if r := e.srv.Call("POST", "/v4/token", "", map[string]string{"name": "alice", "password": "Alice-Passw1rd!"}); r.Status != 200 {
		t.Fatalf("new password refused: %d %s", r.Status, r.Body)
	}

	// Roles.
	e.ok("", "role", "create", "auditor", "--perm", "audit,key:get")
	e.formats("NAME", "role", "list")
	e.formats("NAME", "role", "get", "auditor")
	if out := e.ok("", "role", "get", "auditor"); !strings.Contains(out, "audit,key:get") {
		t.Fatalf("role table %q", out)
	}
	e.ok("", "role", "update", "auditor", "--perm", "audit:get", "--perm", "key:get,create")
	var role struct {
		Perms []struct {
			Resources []struct{ Type string }
			Verbs     []string
		}
	}
	e.jsonOut(&role, "role", "get", "auditor")
	if len(role.Perms) != 2 || role.Perms[1].Resources[0].Type != "key" || len(role.Perms[1].Verbs) != 2 {
		t.Fatalf("role %+v", role)
	}
	e.ok("", "role", "delete", "auditor")
	e.fail("400201", "", "role", "get", "auditor")

	// Locks: three wrong passwords ban alice from this address.
	for range 3 {
		e.fail("401202", "Wrong-Passw0rd!\n", "login", "--server", e.srv.Base, "--name", "alice", "--password-stdin")
	}
	e.fail("403201", "Alice-Passw1rd!\n", "login", "--server", e.srv.Base, "--name", "alice", "--password-stdin")
	e.formats("KEY", "lock", "list")
	var locks []struct{ Key, Status string }
	e.jsonOut(&locks, "lock", "list")
	if len(locks) != 1 || locks[0].Status != "banned" || !strings.HasPrefix(locks[0].Key, "alice::") {
		t.Fatalf("locks %+v", locks)
	}
	e.ok("", "lock", "clear", "alice")
	e.jsonOut(&locks, "lock", "list")
	if len(locks) != 0 {
		t.Fatalf("locks after clear %+v", locks)
	}
	e.ok("", "account", "delete", "alice")
	e.fail("400200", "", "account", "get", "alice")
}

func TestCLIOwnPasswordChange(t *testing.T) {
	e := newCLIEnv(t)
	e.login()
	_, errs, code := e.run(servertest.RootPassword+"\nNew-Root-Passw0rd!\n", "account", "passwd", "--password-stdin")
	if code != 0 || !strings.Contains(errs, "run gatehouse login again") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	e.ok("New-Root-Passw0rd!\n", "login", "--server", e.srv.Base, "--name", "root", "--password-stdin")
	e.fail("401207", "Wrong-Passw0rd!\nOther-Passw0rd!\n", "account", "passwd", "--password-stdin")
}

func TestCLIKeysAudit(t *testing.T) {
	e := newCLIEnv(t)
	e.login()
	e.formats("ID", "key", "list")
	var pending struct {
		ID, Status string
		Activates  time.Time
	}
	e.jsonOut(&pending, "key", "rotate")
	if pending.Status != "pending" || pending.ID == "" || time.Until(pending.Activates) < time.Minute {
		t.Fatalf("pre-published key %+v", pending)
	}
	e.fail("", "", "key", "rotate", "--revoke")
	var k struct{ ID, Status string }
	e.jsonOut(&k, "key", "rotate", "--immediate")
	if k.Status != "active" || k.ID == "" || k.ID == pending.ID {
		t.Fatalf("rotated key %+v", k)
	}
	var keys []struct{ ID, Status string }
	e.jsonOut(&keys, "key", "list")
	if len(keys) != 2 || keys[0].ID != k.ID {
		t.Fatalf("keys %+v: the immediate rotation should have dropped the pending key", keys)
	}
	e.formats("TIME", "audit", "list")
	var recs []struct{ Action, Target string }
	e.jsonOut(&recs, "audit", "list", "--limit", "1")
	if len(recs) != 1 || recs[0].Action != "key.rotate" || recs[0].Target != k.ID {
		t.Fatalf("audit %+v", recs)
	}
	e.fail("400001", "", "audit", "list", "--limit", "5000")
}

func TestCLIAppsChannelsSessions(t *testing.T) {
	e := newCLIEnv(t)
	e.login()
	out, errs, code := e.run("", "app", "create", "web", "--description", "the web shop", "-o", "json")
	if code != 0 || !strings.Contains(errs, "shown this once") {
		t.Fatalf("app create: exit %d, stderr %q", code, errs)
	}
	var app struct{ AppKey, AppSecret, Name string }
	if err := json.Unmarshal([]byte(out), &app); err != nil || app.AppSecret == "" {
		t.Fatalf("app create printed %q: %v", out, err)
	}
	if table := e.ok("", "app", "create", "other"); !strings.HasPrefix(table, "APP KEY") || !strings.Contains(table, "APP SECRET") {
		t.Fatalf("app create table %q", table)
	}
	e.formats("APP KEY", "app", "list")
	e.formats("APP KEY", "app", "get", app.AppKey)
	if strings.Contains(e.ok("", "app", "get", app.AppKey, "-o", "json"), app.AppSecret) {
		t.Fatal("app get shows the secret")
	}
	var upd struct{ Name, Description string }
	e.jsonOut(&upd, "app", "update", app.AppKey, "--name", "shop")
	if upd.Name != "shop" || upd.Description != "the web shop" {
		t.Fatalf("updated app %+v", upd)
	}
	var rot struct{ AppKey, AppSecret string }
	e.jsonOut(&rot, "app", "rotate", app.AppKey, "--grace", "1m")
	if rot.AppSecret == "" || rot.AppSecret == app.AppSecret {
		t.Fatalf("rotated secret %+v", rot)
	}
	access := strings.TrimSpace(e.ok(rot.AppSecret+"\n", "app", "token", app.AppKey, "--secret-stdin"))
	if access == "" {
		t.Fatal("no AccessToken")
	}
	e.fail("401", "not-the-secret\n", "app", "token", app.AppKey, "--secret-stdin")

	// Channels.
	var ch struct {
		ID      string
		AppKeys []string
	}
	e.jsonOut(&ch, "channel", "create", "support", "--app", app.AppKey, "--idle-timeout", "10m")
	if ch.ID == "" || len(ch.AppKeys) != 1 {
		t.Fatalf("channel %+v", ch)
	}
	e.formats("ID", "channel", "list")
	e.formats("ID", "channel", "get", ch.ID)
	e.jsonOut(&ch, "channel", "update", ch.ID, "--no-apps")
	if len(ch.AppKeys) != 0 {
		t.Fatalf("channel apps after --no-apps: %v", ch.AppKeys)
	}
	e.fail("not open to this app", rot.AppSecret+"\n", "session", "open", app.AppKey, "--secret-stdin", "--channel", ch.ID, "--user", "u1")
	e.ok("", "channel", "update", ch.ID, "--app", app.AppKey, "--name", "help")

	// Sessions.
	tok := strings.TrimSpace(e.ok(rot.AppSecret+"\n", "session", "open", app.AppKey, "--secret-stdin", "--channel", ch.ID, "--user", "u1"))
	r := e.srv.Call("GET", "/apiaccess/ccmessaging/session", "", nil,
		"X-App-Key", app.AppKey, "Authorization", "Bearer "+access, "ccmessaging-token", tok)
	if r.Status != 200 {
		t.Fatalf("the opened session does not work: %d %s", r.Status, r.Body)
	}
	e.formats("CHANNEL", "session", "list")
	var sessions []struct{ ChannelID, UserID string }
	e.jsonOut(&sessions, "session", "list", "--channel", ch.ID, "--user", "u1")
	if len(sessions) != 1 || sessions[0].UserID != "u1" {
		t.Fatalf("sessions %+v", sessions)
	}
	e.jsonOut(&sessions, "session", "list", "--user", "nobody")
	if len(sessions) != 0 {
		t.Fatalf("sessions of nobody %+v", sessions)
	}
	e.ok("", "session", "revoke", ch.ID, "u1")
	e.jsonOut(&sessions, "session", "list")
	if len(sessions) != 0 {
		t.Fatalf("sessions after revoke %+v", sessions)
	}
	e.ok("", "channel", "delete", ch.ID)
	e.fail("404001", "", "channel", "get", ch.ID)
	e.ok("", "app", "delete", app.AppKey)
	e.fail("404", "", "app", "get", app.AppKey)
}

func TestCLICompletion(t *testing.T) {
	e := newCLIEnv(t)
	e.login()
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		if out := e.ok("", "completion", sh); len(out) < 100 {
			t.Fatalf("completion %s: %q", sh, out)
		}
	}
	if out := e.ok("", "__complete", "account", "get", ""); !strings.Contains(out, "root\n") {
		t.Fatalf("account names not completed: %q", out)
	}
	if out := e.ok("", "__complete", "account", "list", "-o", ""); !strings.Contains(out, "json\n") {
		t.Fatalf("formats not completed: %q", out)
	}
}

// waitFor waits until cond holds, failing the test after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCLIAuditTail(t *testing.T) {
	e := newCLIEnv(t)
	e.login()
	for _, format := range []string{"table", "json", "yaml"} {
		t.Run(format, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out, errb servertest.LogBuffer
			code := make(chan int, 1)
			go func() {
				code <- execute(ctx, []string{"audit", "tail", "--limit", "1", "--interval", "20ms", "-o", format}, strings.NewReader(""), &out, &errb)
			}()
			waitFor(t, "the first record", func() bool { return strings.Contains(out.String(), "success") })
			tok := e.srv.Root()
			var k struct{ ID string }
			e.srv.Call("POST", "/v4/keys/rotate", tok, nil).JSON(t, &k)
			waitFor(t, "the rotation", func() bool { return strings.Contains(out.String(), k.ID) })
			cancel()
			if c := <-code; c != 0 {
				t.Fatalf("exit %d: %s", c, errb.String())
			}
			s := out.String()
			if strings.Count(s, k.ID) != 1 {
				t.Fatalf("the rotation printed %d times:\n%s", strings.Count(s, k.ID), s)
			}
			switch format {
			case "json":
				for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
					var r struct{ Action string }
					if err := json.Unmarshal([]byte(line), &r); err != nil || r.Action == "" {
						t.Fatalf("line %q: %v", line, err)
					}
				}
			case "yaml":
				dec := yaml.NewDecoder(strings.NewReader(s))
				for {
					var r struct{ Action string }
					if err := dec.Decode(&r); err == io.EOF {
						break
					} else if err != nil || r.Action == "" {
						t.Fatalf("yaml %q: %v", s, err)
					}
				}
			default:
				if !strings.HasPrefix(s, "TIME") || strings.Count(s, "TIME") != 1 {
					t.Fatalf("table:\n%s", s)
				}
			}
		})
	}
}
