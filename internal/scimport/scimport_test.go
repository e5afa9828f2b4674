package scimport

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/engine"
	"github.com/gatehouse/gatehouse/internal/keyring"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/scimport/scfixture"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/bolt"
	"github.com/gatehouse/gatehouse/internal/store/etcd"
	"github.com/gatehouse/gatehouse/internal/store/etcd/etcdtest"
	"github.com/gatehouse/gatehouse/internal/testclock"
)

// The fixture's passwords (its README).
var scPasswords = map[string]string{
	"root": "Sc-Root-Pass1!", "alice": "Alice-Pass-2026!", "bob": "Bob-Pass-2026!x",
	"carol": "Carol-Pass-2026!", "dave": "Dave-Pass-2026!",
}

// fixture is the Service Center fixture, read.
type fixture struct {
	kvs    []KV
	key    []byte
	issued time.Time
	tokens map[string]string
	roles  map[string][]authz.Permission
}

func loadFixture(t *testing.T) fixture {
	t.Helper()
	dir := scfixture.Dir(t)
	f, err := os.Open(filepath.Join(dir, "etcd.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var fx fixture
	if fx.kvs, err = ReadDump(f); err != nil {
		t.Fatal(err)
	}
	if fx.key, err = os.ReadFile(filepath.Join(dir, "private.pem")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	var toks struct {
		IssuedAt int64             `json:"issued_at_unix"`
		Tokens   map[string]string `json:"tokens"`
	}
	if err := json.Unmarshal(b, &toks); err != nil {
		t.Fatal(err)
	}
	fx.issued, fx.tokens = time.Unix(toks.IssuedAt, 0), toks.Tokens
	fx.roles = map[string][]authz.Permission{}
	for i, kv := range fx.kvs {
		// The stores expire items by the real clock, the engine bans by
		// its own (fixed here): the ban must outlast both.
		if strings.HasPrefix(kv.Key, DefaultPrefix+locksDir) {
			var l scLock
			if err := json.Unmarshal([]byte(kv.Value), &l); err != nil {
				t.Fatal(err)
			}
			l.ReleaseAt = time.Now().Add(time.Hour).Unix()
			b, _ := json.Marshal(l)
			fx.kvs[i].Value = string(b)
		}
		if name, ok := cutRole(kv.Key); ok {
			var r struct{ Perms []authz.Permission }
			if err := json.Unmarshal([]byte(kv.Value), &r); err != nil {
				t.Fatal(err)
			}
			fx.roles[name] = r.Perms
		}
	}
	return fx
}

// cutRole returns the role name of an SC role key.
func cutRole(key string) (string, bool) {
	name, ok := strings.CutPrefix(key, DefaultPrefix+rolesDir)
	return name, ok && !strings.Contains(name, "/")
}

func boltStore(t *testing.T) store.Store {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "gatehouse.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func etcdStore(t *testing.T) store.Store {
	c := etcdtest.Start(t, t.TempDir(), 1)
	st, err := etcd.Open(context.Background(), etcd.Config{Endpoints: c.Endpoints(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// startEngine runs an engine and key ring over st, as a server does.
func startEngine(t *testing.T, st store.Store, now func() time.Time, rootPW string) *engine.Engine {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ring, err := keyring.Open(ctx, st, keyring.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	hasher, err := password.NewHasher(password.DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	log := audit.New(st, logger, time.Hour)
	e, err := engine.New(ctx, st, ring, hasher, log, logger, engine.Options{Now: now, RootPassword: rootPW, PasswordOut: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close(); cancel(); ring.Close() })
	return e
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	ae, ok := apierror.As(err)
	if !ok || ae.Code != code {
		t.Fatalf("%s: want error %s, got %v", what, code, err)
	}
}

func TestImportFixtureBolt(t *testing.T) { testImportFixture(t, boltStore(t)) }
func TestImportFixtureEtcd(t *testing.T) { testImportFixture(t, etcdStore(t)) }

// testImportFixture imports the fixture into an empty store and checks
// that every account logs in with its Service Center password, every
// token SC issued verifies with the right roles, every role is SC's, the
// lock holds, a second run changes nothing and a password change kills
// the account's SC token.
func testImportFixture(t *testing.T, st store.Store) {
	fx := loadFixture(t)
	clk := testclock.New(fx.issued.Add(time.Minute))
	ctx := context.Background()
	sum, err := Import(ctx, st, fx.kvs, Options{PrivateKeyPEM: fx.key, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	// admin and developer are Gatehouse's built-ins, which cover SC's.
	for kind, want := range map[string][2]int{"role": {2, 0}, "account": {5, 0}, "lock": {1, 0}} {
		if c, k := sum.Count(kind, engine.ImportCreated), sum.Count(kind, engine.ImportConflict); c != want[0] || k != want[1] {
			t.Fatalf("%s: %d created, %d conflicts; want %v (%+v)", kind, c, k, want, sum.Results)
		}
	}
	if sum.Key == nil || sum.Key.Outcome != keyring.ImportActivated || sum.Parsed.Skipped == 0 {
		t.Fatalf("key %+v, skipped %d", sum.Key, sum.Parsed.Skipped)
	}

	again, err := Import(ctx, st, fx.kvs, Options{PrivateKeyPEM: fx.key, Now: clk.Now})
	if err != nil || again.Changed() {
		t.Fatalf("second run: changed %v, %v (%+v)", again.Changed(), err, again.Results)
	}

	e := startEngine(t, st, clk.Now, "")
	for name, tok := range fx.tokens {
		p, err := e.Verify("Bearer " + tok)
		if err != nil {
			t.Fatalf("SC token of %s: %v", name, err)
		}
		if p.Account != name {
			t.Fatalf("SC token of %s verified as %s", name, p.Account)
		}
	}
	authorize := func(name, resource, verb string, labels map[string]string) error {
		p, err := e.Verify("Bearer " + fx.tokens[name])
		if err != nil {
			t.Fatal(err)
		}
		return e.Authorize(p, resource, verb, labels)
	}
	prod := map[string]string{"environment": "production"}
	for _, c := range []struct {
		name, resource, verb string
		labels               map[string]string
		ok                   bool
	}{
		{"alice", "service", "get", nil, true},
		{"alice", "service", "delete", nil, true},
		{"alice", "account", "get", nil, false},
		{"bob", "service", "get", prod, true},
		{"bob", "account", "get", nil, true},
		{"bob", "account", "create", nil, false},
		{"carol", "account", "create", nil, true},
		{"carol", "role", "delete", nil, true},
	} {
		if err := authorize(c.name, c.resource, c.verb, c.labels); (err == nil) != c.ok {
			t.Fatalf("%s %s %s: %v, want allowed %v", c.name, c.verb, c.resource, err, c.ok)
		}
	}
	for name, perms := range fx.roles {
		r, err := e.GetRole(name)
		if err != nil {
			t.Fatal(err)
		}
		if name == engine.AdminRole || name == engine.DeveloperRole {
			continue // Gatehouse's own, compared in TestImportOverwrite
		}
		if !samePerms(r.Perms, perms) {
			t.Fatalf("role %s: %+v, want %+v", name, r.Perms, perms)
		}
	}

	// carol's ban from 127.0.0.1 holds; from elsewhere she logs in.
	_, err = e.Login(ctx, engine.LoginRequest{Name: "carol", Password: scPasswords["carol"]}, "127.0.0.1")
	wantCode(t, "carol from 127.0.0.1", err, apierror.AccountBlocked.Code)
	for name, pw := range scPasswords {
		_, err := e.Login(ctx, engine.LoginRequest{Name: name, Password: pw}, "10.0.0.7")
		if name == "dave" {
			wantCode(t, "dave (inactive)", err, apierror.AccountInactive.Code)
			continue
		}
		if err != nil {
			t.Fatalf("login %s with SC's password: %v", name, err)
		}
	}

	for name, tok := range fx.tokens {
		c := authz.Caller{Account: name, IP: "10.0.0.8"}
		if err := e.ChangePassword(ctx, c, name, engine.ChangePasswordRequest{CurrentPassword: scPasswords[name], Password: "New-Pass-2026!z"}); err != nil {
			t.Fatalf("change password of %s: %v", name, err)
		}
		_, err := e.Verify("Bearer " + tok)
		wantCode(t, "SC token of "+name+" after a password change", err, apierror.Unauthorized.Code)
	}
}

func samePerms(a, b []authz.Permission) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// A dry run writes nothing, not even on an empty store.
func TestImportDryRun(t *testing.T) {
	fx := loadFixture(t)
	st := boltStore(t)
	clk := testclock.New(fx.issued)
	sum, err := Import(context.Background(), st, fx.kvs, Options{PrivateKeyPEM: fx.key, Now: clk.Now, DryRun: true})
	if err != nil || !sum.Changed() {
		t.Fatalf("dry run: changed %v, %v", sum.Changed(), err)
	}
	items, _, err := st.List(context.Background(), "")
	if err != nil || len(items) != 0 {
		t.Fatalf("dry run wrote %d items (%v)", len(items), err)
	}
}

// On a store a server already bootstrapped, SC's root and built-in roles
// are conflicts left alone; --overwrite replaces them.
func TestImportOverwrite(t *testing.T) {
	fx := loadFixture(t)
	st := boltStore(t)
	clk := testclock.New(fx.issued.Add(time.Minute))
	const gatehouseRootPW = "Gatehouse-Root-1!"
	ctx := context.Background()
	e := startEngine(t, st, clk.Now, gatehouseRootPW)

	sum, err := Import(ctx, st, fx.kvs, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	conflicts := map[string]bool{}
	for _, r := range sum.Results {
		if r.Outcome == engine.ImportConflict {
			conflicts[r.Kind+" "+r.Name] = true
		}
	}
	if !conflicts["account root"] || len(conflicts) != 1 {
		t.Fatalf("conflicts %v", conflicts)
	}
	for _, r := range sum.Results {
		if r.Kind == "role" && (r.Name == engine.AdminRole || r.Name == engine.DeveloperRole) && r.Outcome != engine.ImportUnchanged {
			t.Fatalf("built-in role %s: %+v, want unchanged (Gatehouse's definition covers SC's)", r.Name, r)
		}
	}
	if _, err := e.Login(ctx, engine.LoginRequest{Name: "root", Password: gatehouseRootPW}, "10.0.0.1"); err != nil {
		t.Fatalf("root's Gatehouse password after an import without --overwrite: %v", err)
	}
	sum, err = Import(ctx, st, fx.kvs, Options{Now: clk.Now, Overwrite: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := sum.Count("account", engine.ImportReplaced) + sum.Count("role", engine.ImportReplaced); n != 1 {
		t.Fatalf("%d replaced, want root's account alone (%+v)", n, sum.Results)
	}
	// The running engine follows the store's change feed.
	waitFor(t, "the engine sees SC's root", func() bool {
		a, err := e.GetAccount("root")
		return err == nil && a.ID == "45ebf72c21524e03802274ca88354727"
	})
	if _, err := e.Login(ctx, engine.LoginRequest{Name: "root", Password: scPasswords["root"]}, "10.0.0.1"); err != nil {
		t.Fatalf("root's SC password after --overwrite: %v", err)
	}
	for name, perms := range fx.roles {
		r, err := e.GetRole(name)
		if err != nil {
			t.Fatalf("role %s after --overwrite: %v", name, err)
		}
		switch name {
		case engine.AdminRole, engine.DeveloperRole:
			// Gatehouse's built-ins stay, and grant everything SC's did.
			for _, p := range perms {
				for _, res := range p.Resources {
					for _, v := range p.Verbs {
						if !authz.Allows(r.Perms, res.Type, v, res.Labels) {
							t.Errorf("built-in %s lacks SC's %s:%s", name, res.Type, v)
						}
					}
				}
			}
		default:
			if !samePerms(r.Perms, perms) {
				t.Fatalf("role %s after --overwrite: %+v", name, r.Perms)
			}
		}
	}
}

// SC's signing key keeps verifying SC's tokens (which carry no kid) after
// a rotation retires it.
func TestSCTokensAfterRotation(t *testing.T) {
	fx := loadFixture(t)
	st := boltStore(t)
	clk := testclock.New(fx.issued.Add(time.Minute))
	ctx := context.Background()
	if _, err := Import(ctx, st, fx.kvs, Options{PrivateKeyPEM: fx.key, Now: clk.Now}); err != nil {
		t.Fatal(err)
	}
	ring, err := keyring.Open(ctx, st, keyring.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer ring.Close()
	if _, err := ring.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	e := startEngine(t, st, clk.Now, "")
	if _, err := e.Verify("Bearer " + fx.tokens["alice"]); err != nil {
		t.Fatalf("alice's SC token after a rotation: %v", err)
	}
	// SC has no per-token logout; a token without jti is not revoked alone.
	p, _ := e.Verify("Bearer " + fx.tokens["bob"])
	wantCode(t, "logout of an SC token", e.Logout(ctx, p, "10.0.0.1"), apierror.InvalidParams.Code)
	if _, err := e.Verify("Bearer " + fx.tokens["bob"]); err != nil {
		t.Fatalf("bob's SC token after a refused logout: %v", err)
	}
	// Deactivation and role changes revoke SC tokens too.
	root := authz.Caller{Account: "root", Roles: []string{engine.AdminRole}, IP: "10.0.0.1"}
	if err := e.UpdateAccount(ctx, root, "carol", engine.UpdateAccountRequest{Roles: []string{engine.AdminRole}, Status: engine.StatusInactive}); err != nil {
		t.Fatal(err)
	}
	if err := e.UpdateAccount(ctx, root, "bob", engine.UpdateAccountRequest{Roles: []string{engine.DeveloperRole}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"bob", "carol"} {
		_, err := e.Verify("Bearer " + fx.tokens[name])
		wantCode(t, name+"'s SC token after an account change", err, apierror.Unauthorized.Code)
	}
}

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
