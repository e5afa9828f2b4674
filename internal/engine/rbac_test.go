package engine

import (
	"slices"
	"testing"

	"github.com/gatehouse/gatehouse/internal/apierror"
)

func TestVerbForMethod(t *testing.T) {
	t.Parallel()
	for method, want := range map[string]string{
		"GET": VerbGet, "HEAD": VerbGet, "POST": VerbCreate, "PUT": VerbUpdate, "PATCH": VerbUpdate,
		"DELETE": VerbDelete, "OPTIONS": "OPTIONS", "get": "get",
	} {
		if got := VerbForMethod(method); got != want {
			t.Errorf("VerbForMethod(%q) = %q, want %q", method, got, want)
		}
	}
}

func TestAllows(t *testing.T) {
	t.Parallel()
	res := func(typ string, labels map[string]string) Resource { return Resource{Type: typ, Labels: labels} }
	perms := []Permission{
		{Resources: []Resource{res(ResourceAccount, nil)}, Verbs: []string{VerbGet}},
		{Resources: []Resource{res(ResourceRole, nil), res(ResourceKey, nil)}, Verbs: []string{VerbAll}},
		{Resources: []Resource{res(ResourceService, map[string]string{"env": "prod", "app": "shop"})}, Verbs: []string{VerbGet, VerbUpdate}},
	}
	for _, tc := range []struct {
		resource, verb string
		labels         map[string]string
		want           bool
	}{
		{ResourceAccount, VerbGet, nil, true},
		{ResourceAccount, VerbCreate, nil, false},
		{ResourceAccount, VerbAll, nil, false},
		{ResourceRole, VerbDelete, nil, true},
		{ResourceKey, VerbCreate, nil, true},
		{ResourceAudit, VerbGet, nil, false},
		{ResourceService, VerbGet, nil, true}, // labels narrow only when the request has them
		{ResourceService, VerbGet, map[string]string{"env": "prod"}, true},
		{ResourceService, VerbUpdate, map[string]string{"env": "prod", "app": "shop", "x": "y"}, true},
		{ResourceService, VerbGet, map[string]string{"env": "dev"}, false},
		{ResourceService, VerbGet, map[string]string{"env": "prod", "app": "other"}, false},
		{ResourceService, VerbDelete, map[string]string{"env": "prod"}, false},
		{"", VerbGet, nil, false},
	} {
		if got := allows(perms, tc.resource, tc.verb, tc.labels); got != tc.want {
			t.Errorf("allows(%s, %s, %v) = %v, want %v", tc.resource, tc.verb, tc.labels, got, tc.want)
		}
	}
	if allows(nil, ResourceAccount, VerbGet, nil) {
		t.Error("no permissions allowed something")
	}
}

func TestBuiltinRoles(t *testing.T) {
	t.Parallel()
	for _, r := range allResources {
		for _, v := range []string{VerbGet, VerbCreate, VerbUpdate, VerbDelete} {
			if !allows(builtinPerms(AdminRole), r, v, nil) {
				t.Errorf("admin lacks %s:%s", r, v)
			}
			if got, want := allows(builtinPerms(DeveloperRole), r, v, nil), !slices.Contains(adminOnly, r); got != want {
				t.Errorf("developer %s:%s = %v, want %v", r, v, got, want)
			}
		}
	}
	for _, name := range []string{AdminRole, DeveloperRole} {
		if err := validatePerms(builtinPerms(name)); err != nil {
			t.Errorf("built-in %s: %v", name, err)
		}
	}
}

func TestValidatePerms(t *testing.T) {
	t.Parallel()
	ok := []Permission{{Resources: []Resource{{Type: ResourceAccount, Labels: map[string]string{"a": "b"}}}, Verbs: []string{VerbGet, VerbAll}}}
	if err := validatePerms(ok); err != nil {
		t.Fatal(err)
	}
	if err := validatePerms(nil); err != nil {
		t.Fatalf("no permissions: %v", err)
	}
	for name, perms := range map[string][]Permission{
		"unknown type":  {{Resources: []Resource{{Type: "accounts"}}, Verbs: []string{VerbGet}}},
		"unknown verb":  {{Resources: []Resource{{Type: ResourceAccount}}, Verbs: []string{"list"}}},
		"no verbs":      {{Resources: []Resource{{Type: ResourceAccount}}}},
		"no resources":  {{Verbs: []string{VerbGet}}},
		"upper verb":    {{Resources: []Resource{{Type: ResourceAccount}}, Verbs: []string{"GET"}}},
		"second is bad": {ok[0], {Resources: []Resource{{Type: "x"}}, Verbs: []string{VerbGet}}},
	} {
		t.Run(name, func(t *testing.T) { wantCode(t, validatePerms(perms), "400001") })
	}
}

func TestAuthorize(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	if err := e.CreateRole(bg, admin, RoleRequest{Name: "reader", Perms: []Permission{{Resources: []Resource{{Type: ResourceAccount}}, Verbs: []string{VerbGet}}}}); err != nil {
		t.Fatal(err)
	}
	p := &Principal{Account: "x", Roles: []string{DeveloperRole, "reader", "vanished"}}
	if err := e.Authorize(p, ResourceAccount, VerbGet, nil); err != nil {
		t.Fatalf("reader: %v", err)
	}
	err := e.Authorize(p, ResourceAccount, VerbDelete, nil)
	wantCode(t, err, "403205")
	if ae, _ := apierror.As(err); ae.Detail != "role has no permissions[account:delete]" {
		t.Fatalf("detail %q", ae.Detail)
	}
	if err := e.Authorize(p, ResourceService, VerbCreate, nil); err != nil {
		t.Fatalf("developer: %v", err)
	}
	if perms := e.SelfPerms(p); len(perms) != 2 {
		t.Fatalf("self perms %+v, want the developer's and the reader's", perms)
	}
}
