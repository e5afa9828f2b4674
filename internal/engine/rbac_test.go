package engine

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/authz"
)

func TestBuiltinRoles(t *testing.T) {
	t.Parallel()
	for _, r := range authz.ResourceTypes() {
		for _, v := range []string{authz.VerbGet, authz.VerbCreate, authz.VerbUpdate, authz.VerbDelete} {
			if !authz.Allows(builtinPerms(AdminRole), r, v, nil) {
				t.Errorf("admin lacks %s:%s", r, v)
			}
			if got, want := authz.Allows(builtinPerms(DeveloperRole), r, v, nil), !authz.IsAdministrative(r); got != want {
				t.Errorf("developer %s:%s = %v, want %v", r, v, got, want)
			}
		}
	}
	for _, name := range []string{AdminRole, DeveloperRole} {
		if err := authz.ValidatePerms(builtinPerms(name)); err != nil {
			t.Errorf("built-in %s: %v", name, err)
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
