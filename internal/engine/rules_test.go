package engine

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/testclock"
)

// The rules of accounts, roles and token lifetimes, tested on the engine
// itself; the HTTP tests keep what is wire (status codes, bodies).

// TestCreateAccountRules covers the name rule, the password policy, the
// role rule (1 to 5 existing roles), statuses and duplicates.
func TestCreateAccountRules(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	e.mkAccount(t, "taken", "Passw0rd!t")
	const good = "Passw0rd!x"
	dev := []string{DeveloperRole}
	for _, tc := range []struct {
		name       string
		req        CreateAccountRequest
		code       string   // "" for success
		wantRoles  []string // on success
		wantStatus string   // on success
	}{
		{"empty name", CreateAccountRequest{Name: "", Password: good, Roles: dev}, "400001", nil, ""},
		{"leading dash", CreateAccountRequest{Name: "-abc", Password: good, Roles: dev}, "400001", nil, ""},
		{"trailing dot", CreateAccountRequest{Name: "abc.", Password: good, Roles: dev}, "400001", nil, ""},
		{"space in name", CreateAccountRequest{Name: "a b", Password: good, Roles: dev}, "400001", nil, ""},
		{"slash in name", CreateAccountRequest{Name: "a/b", Password: good, Roles: dev}, "400001", nil, ""},
		{"non-ASCII name", CreateAccountRequest{Name: "名字", Password: good, Roles: dev}, "400001", nil, ""},
		{"65-character name", CreateAccountRequest{Name: strings.Repeat("a", 65), Password: good, Roles: dev}, "400001", nil, ""},
		{"64-character name", CreateAccountRequest{Name: strings.Repeat("b", 64), Password: good, Roles: dev}, "", dev, StatusActive},
		{"one-character name", CreateAccountRequest{Name: "c", Password: good, Roles: dev}, "", dev, StatusActive},
		{"inner punctuation", CreateAccountRequest{Name: "d_e-f.g", Password: good, Roles: dev}, "", dev, StatusActive},

		{"no password", CreateAccountRequest{Name: "p0", Roles: dev}, "400001", nil, ""},
		{"7-character password", CreateAccountRequest{Name: "p1", Password: "Aa1!xxx", Roles: dev}, "400001", nil, ""},
		{"8-character password", CreateAccountRequest{Name: "p2", Password: "Aa1!xxxx", Roles: dev}, "", dev, StatusActive},
		{"32-character password", CreateAccountRequest{Name: "p3", Password: "Aa1!" + strings.Repeat("x", 28), Roles: dev}, "", dev, StatusActive},
		{"33-character password", CreateAccountRequest{Name: "p4", Password: "Aa1!" + strings.Repeat("x", 29), Roles: dev}, "400001", nil, ""},
		{"32 characters of more bytes", CreateAccountRequest{Name: "p5", Password: "Ää1§" + strings.Repeat("ü", 28), Roles: dev}, "", dev, StatusActive},
		{"no upper-case letter", CreateAccountRequest{Name: "p6", Password: "passw0rd!x", Roles: dev}, "400001", nil, ""},
		{"no lower-case letter", CreateAccountRequest{Name: "p7", Password: "PASSW0RD!X", Roles: dev}, "400001", nil, ""},
		{"no digit", CreateAccountRequest{Name: "p8", Password: "Password!x", Roles: dev}, "400001", nil, ""},
		{"no special character", CreateAccountRequest{Name: "p9", Password: "Passw0rdxx", Roles: dev}, "400001", nil, ""},
		{"invalid UTF-8 password", CreateAccountRequest{Name: "p10", Password: "Aa1!xxxx\xff", Roles: dev}, "400001", nil, ""},
		{"password is the name", CreateAccountRequest{Name: "Abcd-123", Password: "Abcd-123", Roles: dev}, "400001", nil, ""},
		{"password is the name reversed", CreateAccountRequest{Name: "Abcd-123", Password: "321-dcbA", Roles: dev}, "400001", nil, ""},

		{"no roles", CreateAccountRequest{Name: "r1", Password: good}, "400001", nil, ""},
		{"empty roles", CreateAccountRequest{Name: "r2", Password: good, Roles: []string{}}, "400001", nil, ""},
		{"six roles", CreateAccountRequest{Name: "r3", Password: good, Roles: []string{"admin", "developer", "a", "b", "c", "d"}}, "400001", nil, ""},
		{"invalid role name", CreateAccountRequest{Name: "r4", Password: good, Roles: []string{"-bad"}}, "400001", nil, ""},
		{"role that does not exist", CreateAccountRequest{Name: "r5", Password: good, Roles: []string{DeveloperRole, "nosuchrole"}}, "400202", nil, ""},
		{"repeated roles kept once", CreateAccountRequest{Name: "r6", Password: good, Roles: []string{DeveloperRole, AdminRole, DeveloperRole}},
			"", []string{DeveloperRole, AdminRole}, StatusActive},

		{"unknown status", CreateAccountRequest{Name: "s1", Password: good, Roles: dev, Status: "frozen"}, "400001", nil, ""},
		{"upper-case status", CreateAccountRequest{Name: "s2", Password: good, Roles: dev, Status: "Active"}, "400001", nil, ""},
		{"inactive", CreateAccountRequest{Name: "s3", Password: good, Roles: dev, Status: StatusInactive}, "", dev, StatusInactive},

		{"duplicate", CreateAccountRequest{Name: "taken", Password: good, Roles: dev}, "409200", nil, ""},
		{"duplicate of root", CreateAccountRequest{Name: RootAccount, Password: good, Roles: dev}, "409200", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := e.CreateAccount(bg, admin, tc.req)
			if tc.code != "" {
				wantCode(t, err, tc.code)
				if ae, _ := apierror.As(err); tc.req.Password != "" && strings.Contains(ae.Detail, tc.req.Password) {
					t.Fatalf("detail %q echoes the password", ae.Detail)
				}
				if tc.code != "409200" && tc.req.Name != "" {
					_, err := e.GetAccount(tc.req.Name)
					wantCode(t, err, "400200")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			a, err := e.GetAccount(tc.req.Name)
			if err != nil || !slices.Equal(a.Roles, tc.wantRoles) || a.Status != tc.wantStatus {
				t.Fatalf("created %+v, %v; want roles %v, status %s", a, err, tc.wantRoles, tc.wantStatus)
			}
		})
	}
}

// TestUpdateAccountRules covers what an update may change and what it
// refuses; a refused update changes nothing.
func TestUpdateAccountRules(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	e.mkAccount(t, "carol", "Passw0rd!c")
	if err := e.CreateRole(bg, admin, RoleRequest{Name: "reader"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		req        UpdateAccountRequest
		code       string
		wantRoles  []string
		wantStatus string
	}{
		{"nothing", UpdateAccountRequest{}, "400001", nil, ""},
		// Service Center requires roles on every update (its validator's
		// rule for roles is 1 to 5), a status alone included.
		{"status without roles", UpdateAccountRequest{Status: StatusInactive}, "400001", nil, ""},
		{"empty roles", UpdateAccountRequest{Roles: []string{}, Status: StatusInactive}, "400001", nil, ""},
		{"six roles", UpdateAccountRequest{Roles: []string{"a", "b", "c", "d", "e", "f"}}, "400001", nil, ""},
		{"invalid role name", UpdateAccountRequest{Roles: []string{"a b"}}, "400001", nil, ""},
		{"role that does not exist", UpdateAccountRequest{Roles: []string{"nosuchrole"}}, "400202", nil, ""},
		{"unknown status", UpdateAccountRequest{Roles: []string{AdminRole}, Status: "frozen"}, "400001", nil, ""},
		// An empty status leaves the status alone, as in Service Center.
		{"roles", UpdateAccountRequest{Roles: []string{"reader", AdminRole, "reader"}, Status: ""}, "", []string{"reader", AdminRole}, StatusActive},
		{"status", UpdateAccountRequest{Roles: []string{"reader", AdminRole}, Status: StatusInactive}, "", []string{"reader", AdminRole}, StatusInactive},
		{"both", UpdateAccountRequest{Roles: []string{DeveloperRole}, Status: StatusActive}, "", []string{DeveloperRole}, StatusActive},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := e.GetAccount("carol")
			if err != nil {
				t.Fatal(err)
			}
			err = e.UpdateAccount(bg, admin, "carol", tc.req)
			after, _ := e.GetAccount("carol")
			if tc.code != "" {
				wantCode(t, err, tc.code)
				if !slices.Equal(after.Roles, before.Roles) || after.Status != before.Status {
					t.Fatalf("refused update changed %+v to %+v", before, after)
				}
				return
			}
			if err != nil || !slices.Equal(after.Roles, tc.wantRoles) || after.Status != tc.wantStatus {
				t.Fatalf("updated %+v, %v; want roles %v, status %s", after, err, tc.wantRoles, tc.wantStatus)
			}
		})
	}
	wantCode(t, e.UpdateAccount(bg, admin, "nosuch", UpdateAccountRequest{Roles: []string{DeveloperRole}}), "400200")
	wantCode(t, e.DeleteAccount(bg, admin, "nosuch"), "400200")
	wantCode(t, e.ChangePassword(bg, admin, "nosuch", ChangePasswordRequest{Password: "Passw0rd!n"}), "400200")
}

// TestBuiltInProtections covers root (403202), the built-in roles
// (403203) and the caller's own account (403204): each refusal leaves
// the target as it was.
func TestBuiltInProtections(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	if err := e.CreateAccount(bg, admin, CreateAccountRequest{Name: "admin2", Password: "Passw0rd!a2", Roles: []string{AdminRole}}); err != nil {
		t.Fatal(err)
	}
	e.mkAccount(t, "dev1", "Passw0rd!d1")
	admin2 := authz.Caller{Account: "admin2", Roles: []string{AdminRole}, IP: "127.0.0.1"}
	dev1 := authz.Caller{Account: "dev1", Roles: []string{DeveloperRole}, IP: "127.0.0.1"}
	inactive := StatusInactive
	perms := []authz.Permission{{Resources: []authz.Resource{{Type: authz.ResourceService}}, Verbs: []string{authz.VerbGet}}}
	for _, tc := range []struct {
		name string
		op   func() error
		code string
	}{
		{"root updates root's roles", func() error {
			return e.UpdateAccount(bg, admin, RootAccount, UpdateAccountRequest{Roles: []string{DeveloperRole}})
		}, "403202"},
		{"admin updates root's roles", func() error {
			return e.UpdateAccount(bg, admin2, RootAccount, UpdateAccountRequest{Roles: []string{DeveloperRole}})
		}, "403202"},
		{"admin deactivates root", func() error {
			return e.UpdateAccount(bg, admin2, RootAccount, UpdateAccountRequest{Roles: []string{AdminRole}, Status: inactive})
		}, "403202"},
		{"root deletes root", func() error { return e.DeleteAccount(bg, admin, RootAccount) }, "403202"},
		{"admin deletes root", func() error { return e.DeleteAccount(bg, admin2, RootAccount) }, "403202"},
		{"admin updates own roles", func() error {
			return e.UpdateAccount(bg, admin2, "admin2", UpdateAccountRequest{Roles: []string{DeveloperRole}})
		}, "403204"},
		{"admin deactivates itself", func() error {
			return e.UpdateAccount(bg, admin2, "admin2", UpdateAccountRequest{Roles: []string{AdminRole}, Status: inactive})
		}, "403204"},
		{"admin deletes itself", func() error { return e.DeleteAccount(bg, admin2, "admin2") }, "403204"},
		{"update admin role", func() error { return e.UpdateRole(bg, admin, AdminRole, RoleRequest{Perms: perms}) }, "403203"},
		{"update developer role", func() error { return e.UpdateRole(bg, admin, DeveloperRole, RoleRequest{Perms: perms}) }, "403203"},
		{"delete admin role", func() error { return e.DeleteRole(bg, admin, AdminRole) }, "403203"},
		{"delete developer role", func() error { return e.DeleteRole(bg, admin, DeveloperRole) }, "403203"},
		{"create admin role", func() error { return e.CreateRole(bg, admin, RoleRequest{Name: AdminRole}) }, "409201"},
		{"create developer role", func() error { return e.CreateRole(bg, admin, RoleRequest{Name: DeveloperRole}) }, "409201"},
		{"non-admin sets another's password", func() error {
			return e.ChangePassword(bg, dev1, "admin2", ChangePasswordRequest{CurrentPassword: "Passw0rd!a2", Password: "Passw0rd!a3"})
		}, "403001"},
		{"non-admin sets root's password", func() error {
			return e.ChangePassword(bg, dev1, RootAccount, ChangePasswordRequest{CurrentPassword: rootPW, Password: "Passw0rd!r2"})
		}, "403001"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.op(), tc.code) })
	}
	for _, name := range []string{RootAccount, "admin2"} {
		if a, err := e.GetAccount(name); err != nil || !slices.Equal(a.Roles, []string{AdminRole}) || a.Status != StatusActive {
			t.Fatalf("%s after refused changes: %+v, %v", name, a, err)
		}
	}
	for _, name := range []string{AdminRole, DeveloperRole} {
		if r, err := e.GetRole(name); err != nil || !slices.EqualFunc(r.Perms, builtinPerms(name), samePerm) {
			t.Fatalf("built-in role %s after refused changes: %+v, %v", name, r, err)
		}
	}
	e.login(t, "admin2", "Passw0rd!a2")
	e.login(t, RootAccount, rootPW)
}

func samePerm(a, b authz.Permission) bool {
	return slices.Equal(a.Verbs, b.Verbs) && slices.EqualFunc(a.Resources, b.Resources, func(x, y authz.Resource) bool {
		return x.Type == y.Type && len(x.Labels) == 0 && len(y.Labels) == 0
	})
}

// TestRoleRules covers role creation, update and deletion: names and
// permissions are validated, duplicates refused, and a role an account
// holds cannot be deleted.
func TestRoleRules(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	getAccount := []authz.Permission{{Resources: []authz.Resource{{Type: authz.ResourceAccount}}, Verbs: []string{authz.VerbGet}}}
	if err := e.CreateRole(bg, admin, RoleRequest{Name: "reader", Perms: getAccount}); err != nil {
		t.Fatal(err)
	}
	bad := map[string][]authz.Permission{
		"unknown resource type": {{Resources: []authz.Resource{{Type: "accounts"}}, Verbs: []string{authz.VerbGet}}},
		"empty resource type":   {{Resources: []authz.Resource{{Type: ""}}, Verbs: []string{authz.VerbGet}}},
		"unknown verb":          {{Resources: []authz.Resource{{Type: authz.ResourceAccount}}, Verbs: []string{"list"}}},
		"upper-case verb":       {{Resources: []authz.Resource{{Type: authz.ResourceAccount}}, Verbs: []string{"GET"}}},
		"no verbs":              {{Resources: []authz.Resource{{Type: authz.ResourceAccount}}, Verbs: []string{}}},
		"no resources":          {{Verbs: []string{authz.VerbGet}}},
	}

	t.Run("create", func(t *testing.T) {
		for _, name := range []string{"", "-x", "x-", "a b", "x/y", strings.Repeat("r", 65)} {
			wantCode(t, e.CreateRole(bg, admin, RoleRequest{Name: name}), "400001")
		}
		for what, perms := range bad {
			wantCode(t, e.CreateRole(bg, admin, RoleRequest{Name: "invalid1", Perms: perms}), "400001")
			if _, err := e.GetRole("invalid1"); err == nil {
				t.Fatalf("%s: a role with invalid permissions was created", what)
			}
		}
		wantCode(t, e.CreateRole(bg, admin, RoleRequest{Name: "reader"}), "409201")
		if err := e.CreateRole(bg, admin, RoleRequest{Name: strings.Repeat("r", 64)}); err != nil {
			t.Fatalf("64-character name: %v", err)
		}
		r, err := e.GetRole(strings.Repeat("r", 64))
		if err != nil || r.Perms == nil || len(r.Perms) != 0 {
			t.Fatalf("role without permissions: %+v, %v; want an empty list", r, err)
		}
	})

	t.Run("update", func(t *testing.T) {
		for what, perms := range bad {
			wantCode(t, e.UpdateRole(bg, admin, "reader", RoleRequest{Perms: perms}), "400001")
			if r, _ := e.GetRole("reader"); !slices.EqualFunc(r.Perms, getAccount, samePerm) {
				t.Fatalf("%s: invalid update applied: %+v", what, r.Perms)
			}
		}
		wantCode(t, e.UpdateRole(bg, admin, "nosuch", RoleRequest{Perms: getAccount}), "400201")
		p := &Principal{Account: "x", Roles: []string{"reader"}}
		wantCode(t, e.Authorize(p, authz.ResourceAccount, authz.VerbCreate, nil), "403205")
		both := []authz.Permission{{Resources: []authz.Resource{{Type: authz.ResourceAccount}}, Verbs: []string{authz.VerbGet, authz.VerbCreate}}}
		if err := e.UpdateRole(bg, admin, "reader", RoleRequest{Perms: both}); err != nil {
			t.Fatal(err)
		}
		if err := e.Authorize(p, authz.ResourceAccount, authz.VerbCreate, nil); err != nil {
			t.Fatalf("an updated role does not apply at once: %v", err)
		}
		if err := e.UpdateRole(bg, admin, "reader", RoleRequest{}); err != nil {
			t.Fatal(err)
		}
		if r, _ := e.GetRole("reader"); r.Perms == nil || len(r.Perms) != 0 {
			t.Fatalf("perms not replaced by none: %+v", r.Perms)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if err := e.CreateRole(bg, admin, RoleRequest{Name: "bound1"}); err != nil {
			t.Fatal(err)
		}
		inactive := StatusInactive
		if err := e.CreateAccount(bg, admin, CreateAccountRequest{Name: "holder1", Password: "Passw0rd!h1",
			Roles: []string{DeveloperRole, "bound1"}, Status: inactive}); err != nil {
			t.Fatal(err)
		}
		err := e.DeleteRole(bg, admin, "bound1")
		wantCode(t, err, "400205") // an inactive account still holds it
		if ae, _ := apierror.As(err); !strings.Contains(ae.Detail, "holder1") {
			t.Fatalf("detail %q does not name the account", ae.Detail)
		}
		if _, err := e.GetRole("bound1"); err != nil {
			t.Fatalf("bound role deleted: %v", err)
		}
		if err := e.UpdateAccount(bg, admin, "holder1", UpdateAccountRequest{Roles: []string{DeveloperRole}}); err != nil {
			t.Fatal(err)
		}
		if err := e.DeleteRole(bg, admin, "bound1"); err != nil {
			t.Fatalf("role no account holds: %v", err)
		}
		wantCode(t, e.DeleteRole(bg, admin, "bound1"), "400201")
		_, err = e.GetRole("bound1")
		wantCode(t, err, "400201")
	})
}

// TestTokenLifetimeRules covers tokenExpirationTime: a Go duration from
// 15m to 24h inclusive, the configured lifetime when absent.
func TestTokenLifetimeRules(t *testing.T) {
	t.Parallel()
	clk := testclock.New(time.Now().Truncate(time.Second))
	e := newEngine(t, Options{Now: clk.Now, TokenTTL: 2 * time.Hour})
	for _, tc := range []struct {
		ttl  string
		want time.Duration // 0: refused
	}{
		{"", 2 * time.Hour},
		{"15m", 15 * time.Minute},
		{"24h", 24 * time.Hour},
		{"1h30m", 90 * time.Minute},
		{"900s", 15 * time.Minute},
		{"14m59s", 0},
		{"24h0m1s", 0},
		{"25h", 0},
		{"0", 0},
		{"-1h", 0},
		{"abc", 0},
		{"12", 0},
		{" 1h", 0},
	} {
		t.Run(tc.ttl, func(t *testing.T) {
			tok, err := e.Login(bg, LoginRequest{Name: RootAccount, Password: rootPW, TokenExpirationTime: tc.ttl}, "127.0.0.1")
			if tc.want == 0 {
				wantCode(t, err, "400001")
				if ae, _ := apierror.As(err); ae.Detail != "tokenExpirationTime must be a duration between 15m and 24h" {
					t.Fatalf("detail %q", ae.Detail)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := parseUnverified(t, tok)
			if got := c.ExpiresAt.Sub(clk.Now()); got != tc.want {
				t.Fatalf("token lives %v, want %v", got, tc.want)
			}
		})
	}
}

// TestTokenExpiryRules covers exp: a token is refused (401205) from its
// exp plus the configured leeway on, whether it was verified before (and
// is cached) or not.
func TestTokenExpiryRules(t *testing.T) {
	t.Parallel()
	for _, leeway := range []time.Duration{0, 30 * time.Second, MaxLeeway} {
		t.Run(leeway.String(), func(t *testing.T) {
			t.Parallel()
			clk := testclock.New(time.Now().Truncate(time.Second))
			e := newEngine(t, Options{Now: clk.Now, Leeway: leeway})
			login := func() string {
				tok, err := e.Login(bg, LoginRequest{Name: RootAccount, Password: rootPW, TokenExpirationTime: "15m"}, "127.0.0.1")
				if err != nil {
					t.Fatal(err)
				}
				return "Bearer " + tok
			}
			cached, fresh, late := login(), login(), login()
			if _, err := e.Verify(cached); err != nil {
				t.Fatal(err)
			}
			clk.Advance(15*time.Minute + leeway - time.Millisecond)
			if _, err := e.Verify(cached); err != nil {
				t.Fatalf("cached token just before exp+leeway: %v", err)
			}
			if _, err := e.Verify(fresh); err != nil {
				t.Fatalf("token first verified just before exp+leeway: %v", err)
			}
			clk.Advance(time.Millisecond)
			for name, tok := range map[string]string{"cached": cached, "verified before": fresh, "never verified": late} {
				_, err := e.Verify(tok)
				if ae, ok := apierror.As(err); !ok || ae.Code != "401205" {
					t.Fatalf("%s token at exp+leeway: want 401205, got %v", name, err)
				}
			}
		})
	}
}

// TestOptionBounds covers the bounds of the configured token lifetime and
// leeway.
func TestOptionBounds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts Options
		ok   bool
	}{
		{"defaults", Options{}, true},
		{"24h lifetime", Options{TokenTTL: 24 * time.Hour}, true},
		{"lifetime over 24h", Options{TokenTTL: 24*time.Hour + time.Second}, false},
		{"negative lifetime", Options{TokenTTL: -time.Second}, false},
		{"60s leeway", Options{Leeway: time.Minute}, true},
		{"leeway over 60s", Options{Leeway: time.Minute + time.Millisecond}, false},
		{"negative leeway", Options{Leeway: -time.Millisecond}, false},
	} {
		opts := tc.opts
		if err := opts.defaults(); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	opts := Options{}
	if err := opts.defaults(); err != nil || opts.TokenTTL != 12*time.Hour || opts.Leeway != 0 {
		t.Fatalf("defaults: lifetime %v, leeway %v, %v", opts.TokenTTL, opts.Leeway, err)
	}
}
