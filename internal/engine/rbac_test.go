package engine

import (
	"path/filepath"
	"reflect"
	"regexp"
	"testing"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/bolt"
)

// TestBuiltinRoles: Service Center's permission sets (its AdminPerms and
// DevPerms, as a Service Center store holds them), and for admin a second
// permission with Gatehouse's own resources.
func TestBuiltinRoles(t *testing.T) {
	t.Parallel()
	all := []string{authz.VerbAll}
	res := func(types ...string) []authz.Resource {
		var out []authz.Resource
		for _, typ := range types {
			out = append(out, authz.Resource{Type: typ})
		}
		return out
	}
	for _, tc := range []struct {
		name string
		want []authz.Permission
	}{
		{AdminRole, []authz.Permission{
			{Resources: res("account", "config", "role", "service", "governance", "ops", "service/schema"), Verbs: all},
			{Resources: res("app", "channel", "session", "key", "audit", "revocation"), Verbs: all},
		}},
		{DeveloperRole, []authz.Permission{
			{Resources: res("config", "service", "governance", "ops", "service/schema"), Verbs: all},
		}},
	} {
		if got := builtinPerms(tc.name); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s = %+v, want %+v", tc.name, got, tc.want)
		}
		if err := authz.ValidatePerms(builtinPerms(tc.name)); err != nil {
			t.Errorf("built-in %s: %v", tc.name, err)
		}
	}
}

func TestAuthorize(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	if err := e.CreateRole(bg, admin, RoleRequest{Name: "reader", Perms: []authz.Permission{{Resources: []authz.Resource{{Type: authz.ResourceAccount}}, Verbs: []string{authz.VerbGet}}}}); err != nil {
		t.Fatal(err)
	}
	p := &Principal{Account: "x", Roles: []string{DeveloperRole, "reader", "vanished"}}
	if err := e.Authorize(p, authz.ResourceAccount, authz.VerbGet, nil); err != nil {
		t.Fatalf("reader: %v", err)
	}
	err := e.Authorize(p, authz.ResourceAccount, authz.VerbDelete, nil)
	wantCode(t, err, "403205")
	if ae, _ := apierror.As(err); ae.Detail != "role has no permissions[account:delete]" {
		t.Fatalf("detail %q", ae.Detail)
	}
	if err := e.Authorize(p, authz.ResourceService, authz.VerbCreate, nil); err != nil {
		t.Fatalf("developer: %v", err)
	}
	if perms := e.SelfPerms(p); len(perms) != 2 {
		t.Fatalf("self perms %+v, want the developer's and the reader's", perms)
	}
}

// TestBuiltinRolesRefreshedAtStart: a store whose built-in roles hold
// other permissions (an earlier version's, or a Service Center store's
// admin without Gatehouse's resources) gets this version's at start; the
// role keeps its id and creation time.
func TestBuiltinRolesRefreshedAtStart(t *testing.T) {
	t.Parallel()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "gatehouse.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	old := authz.Permission{Resources: []authz.Resource{{Type: "instance"}, {Type: "service"}}, Verbs: []string{authz.VerbAll}}
	for _, name := range []string{AdminRole, DeveloperRole} {
		rec := roleRecord{ID: "legacy-" + name, Name: name, Perms: []authz.Permission{old}, CreateTime: 100, UpdateTime: 100}
		if _, err := st.Create(bg, store.Item{Key: rolePrefix + name, Value: store.EncodeJSON(rec)}); err != nil {
			t.Fatal(err)
		}
	}
	e := startEngine(t, st, Options{})
	for _, name := range []string{AdminRole, DeveloperRole} {
		r, err := e.GetRole(name)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(r.Perms, builtinPerms(name)) || r.ID != "legacy-"+name || r.CreateTime != "100" || r.UpdateTime == "100" {
			t.Errorf("%s after start: %+v", name, r)
		}
	}
	// Unchanged built-in roles are not written again.
	it, err := st.Get(bg, rolePrefix+AdminRole)
	if err != nil {
		t.Fatal(err)
	}
	startEngine(t, st, Options{})
	if again, err := st.Get(bg, rolePrefix+AdminRole); err != nil || again.Revision != it.Revision {
		t.Fatalf("second start rewrote the admin role: %v %d → %d", err, it.Revision, again.Revision)
	}
}

// TestRecordIDs: new accounts and roles get ids in Service Center's form,
// 32 lower-case hex digits.
func TestRecordIDs(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	e.mkAccount(t, "carol", "Passw0rd!c")
	if err := e.CreateRole(bg, admin, RoleRequest{Name: "reader"}); err != nil {
		t.Fatal(err)
	}
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	seen := map[string]bool{}
	for _, name := range []string{RootAccount, "carol"} {
		a, err := e.GetAccount(name)
		if err != nil || !hex32.MatchString(a.ID) || seen[a.ID] {
			t.Errorf("account %s id %q (%v)", name, a.ID, err)
		}
		seen[a.ID] = true
	}
	for _, name := range []string{AdminRole, DeveloperRole, "reader"} {
		r, err := e.GetRole(name)
		if err != nil || !hex32.MatchString(r.ID) || seen[r.ID] {
			t.Errorf("role %s id %q (%v)", name, r.ID, err)
		}
		seen[r.ID] = true
	}
}
