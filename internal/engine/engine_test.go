package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/keyring"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/bolt"
	"github.com/gatehouse/gatehouse/internal/store/etcd"
	"github.com/gatehouse/gatehouse/internal/store/etcd/etcdtest"
)

const rootPW = "Root-Passw0rd!"

// testEngine is an engine over a real store and key ring.
type testEngine struct {
	*Engine
	st   store.Store
	ring *keyring.Ring
}

// newEngine builds an engine over a bolt file in a temporary directory;
// opts.RootPassword defaults to rootPW.
func newEngine(tb testing.TB, opts Options) *testEngine {
	tb.Helper()
	st, err := bolt.Open(filepath.Join(tb.TempDir(), "gatehouse.db"), bolt.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() }) // some tests close it first
	return startEngine(tb, st, opts)
}

// newEtcdEngine builds an engine over a one-member etcd cluster running
// in the test process, like newEngine.
func newEtcdEngine(tb testing.TB, opts Options) *testEngine {
	tb.Helper()
	c := etcdtest.Start(tb, tb.TempDir(), 1)
	st, err := etcd.Open(bg, etcd.Config{Endpoints: c.Endpoints(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	return startEngine(tb, st, opts)
}

// startEngine builds an engine and its key ring over st, as one replica
// does; opts.RootPassword defaults to rootPW. The caller closes st.
func startEngine(tb testing.TB, st store.Store, opts Options) *testEngine {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ring, err := keyring.Open(ctx, st, keyring.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	hasher, err := password.NewHasher(password.DefaultParams())
	if err != nil {
		tb.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	log := audit.New(st, logger, time.Hour)
	if opts.RootPassword == "" {
		opts.RootPassword = rootPW
	}
	e, err := New(ctx, st, ring, hasher, log, logger, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		log.Close()
		cancel()
		ring.Close()
	})
	return &testEngine{Engine: e, st: st, ring: ring}
}

var (
	admin = authz.Caller{Account: RootAccount, Roles: []string{AdminRole}, IP: "127.0.0.1"}
	bg    = context.Background()
)

// login logs name in from 127.0.0.1, failing the test otherwise.
func (e *testEngine) login(tb testing.TB, name, pw string) string {
	tb.Helper()
	tok, err := e.Login(bg, LoginRequest{Name: name, Password: pw}, "127.0.0.1")
	if err != nil {
		tb.Fatalf("login %s: %v", name, err)
	}
	return tok
}

// mkAccount creates a developer account.
func (e *testEngine) mkAccount(tb testing.TB, name, pw string) {
	tb.Helper()
	if err := e.CreateAccount(bg, admin, CreateAccountRequest{Name: name, Password: pw, Roles: []string{DeveloperRole}}); err != nil {
		tb.Fatalf("create %s: %v", name, err)
	}
}

// wantCode checks that err is the API error with code.
func wantCode(tb testing.TB, err error, code string) {
	tb.Helper()
	ae, ok := apierror.As(err)
	if !ok || ae.Code != code {
		tb.Fatalf("want error %s, got %v", code, err)
	}
}

func TestQuotas(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{MaxAccounts: 2, MaxRoles: 3})
	e.mkAccount(t, "second", "Passw0rd!2")
	err := e.CreateAccount(bg, admin, CreateAccountRequest{Name: "third", Password: "Passw0rd!3", Roles: []string{DeveloperRole}})
	wantCode(t, err, "400203")
	res, err := e.BatchCreateAccounts(bg, admin, []CreateAccountRequest{{Name: "fourth", Password: "Passw0rd!4", Roles: []string{DeveloperRole}}})
	if err != nil || len(res) != 1 || res[0].Error == nil || res[0].Error.Code != "400203" {
		t.Fatalf("batch beyond the quota: %+v, %v", res, err)
	}

	if err := e.CreateRole(bg, admin, RoleRequest{Name: "third"}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, e.CreateRole(bg, admin, RoleRequest{Name: "fourth"}), "400204")
}

// A deletion is visible to the next operation on the same engine, as a
// creation or update is.
func TestDeleteVisibleAtOnce(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	for i := range 5 {
		name := fmt.Sprintf("gone%d", i)
		if err := e.CreateRole(bg, admin, RoleRequest{Name: name}); err != nil {
			t.Fatal(err)
		}
		if err := e.DeleteRole(bg, admin, name); err != nil {
			t.Fatal(err)
		}
		_, err := e.GetRole(name)
		wantCode(t, err, "400201")

		e.mkAccount(t, name, "Passw0rd!g")
		if err := e.DeleteAccount(bg, admin, name); err != nil {
			t.Fatal(err)
		}
		_, err = e.GetAccount(name)
		wantCode(t, err, "400200")
	}
}

func TestStoreUnavailable(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	tok := e.login(t, RootAccount, rootPW)
	if _, err := e.Verify("Bearer " + tok); err != nil {
		t.Fatal(err)
	}
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	// Verification of known tokens continues; writes are refused.
	p, err := e.Verify("Bearer " + tok)
	if err != nil || p.Account != RootAccount {
		t.Fatalf("verify with the store down: %+v, %v", p, err)
	}
	wantCode(t, e.CreateAccount(bg, admin, CreateAccountRequest{Name: "x", Password: "Passw0rd!x", Roles: []string{DeveloperRole}}), "503001")
	_, err = e.Login(bg, LoginRequest{Name: RootAccount, Password: rootPW}, "127.0.0.1")
	wantCode(t, err, "503001")
	wantCode(t, e.Logout(bg, p, "127.0.0.1"), "503001")
	_, err = e.Locks(bg)
	wantCode(t, err, "503001")
	deadline := time.Now().Add(5 * time.Second)
	for e.Healthy() {
		if time.Now().After(deadline) {
			t.Fatal("engine healthy with its store closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRootTokenSurvivesMissingRoot(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	e.mkAccount(t, "other", "Passw0rd!o")
	root, other := e.login(t, RootAccount, rootPW), e.login(t, "other", "Passw0rd!o")
	for _, name := range []string{RootAccount, "other"} {
		if err := e.st.Delete(bg, accountPrefix+name); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.accounts.Has(RootAccount) || e.accounts.Has("other") {
		if time.Now().After(deadline) {
			t.Fatal("the view kept deleted accounts")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := e.Verify("Bearer " + root); err != nil {
		t.Fatalf("root token without a root account: %v", err)
	}
	_, err := e.Verify("Bearer " + other)
	wantCode(t, err, "401206")
}

func TestBootstrapGeneratesRootPassword(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	st, err := bolt.Open(filepath.Join(t.TempDir(), "db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	ring, err := keyring.Open(ctx, st, keyring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ring.Close()
	hasher, err := password.NewHasher(password.DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	log := audit.New(nil, logger, time.Hour)
	if _, err := New(ctx, st, ring, hasher, log, logger, Options{RootPassword: "weak"}); err == nil {
		t.Fatal("a root password failing the policy was accepted")
	}
	e, err := New(ctx, st, ring, hasher, log, logger, Options{PasswordOut: &out})
	if err != nil {
		t.Fatal(err)
	}
	pw, ok := strings.CutPrefix(out.String(), "gatehouse: root account created with generated password: ")
	pw = strings.TrimSuffix(pw, "\n")
	if !ok || strings.Contains(pw, " ") {
		t.Fatalf("printed %q", out.String())
	}
	if err := password.CheckNewAccountPassword(RootAccount, pw); err != nil {
		t.Fatalf("generated password %v", err)
	}
	if _, err := e.Login(bg, LoginRequest{Name: RootAccount, Password: pw}, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	// Once root exists, the password option is ignored.
	if _, err := New(ctx, st, ring, hasher, log, logger, Options{RootPassword: "Other-Passw0rd!"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Login(bg, LoginRequest{Name: RootAccount, Password: "Other-Passw0rd!"}, "127.0.0.2"); !errors.Is(err, apierror.WrongCredentials) {
		t.Fatalf("root password replaced on restart: %v", err)
	}
	if _, err := st.Get(bg, accountPrefix+RootAccount); errors.Is(err, store.ErrNotFound) {
		t.Fatal("root not stored")
	}
}
