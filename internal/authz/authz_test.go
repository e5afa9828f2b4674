package authz

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
		if got := Allows(perms, tc.resource, tc.verb, tc.labels); got != tc.want {
			t.Errorf("Allows(%s, %s, %v) = %v, want %v", tc.resource, tc.verb, tc.labels, got, tc.want)
		}
	}
	if Allows(nil, ResourceAccount, VerbGet, nil) {
		t.Error("no permissions allowed something")
	}
}

func TestResourceTypes(t *testing.T) {
	t.Parallel()
	types := ResourceTypes()
	for _, r := range types {
		if !IsResourceType(r) {
			t.Errorf("%q listed but not a resource type", r)
		}
	}
	for _, r := range []string{"", "accounts", "Service", "*"} {
		if IsResourceType(r) {
			t.Errorf("%q is not a resource type", r)
		}
	}
	types[0] = "changed"
	if !IsResourceType(ResourceService) {
		t.Error("ResourceTypes handed out its own slice")
	}
}

// TestResourceTypeSets: Service Center's resource types exactly (its
// server/service/rbac/resource.go), then Gatehouse's own; nothing else is
// a type a permission may name.
func TestResourceTypeSets(t *testing.T) {
	t.Parallel()
	sc := []string{"account", "config", "role", "service", "governance", "ops", "service/schema"}
	own := []string{"app", "channel", "session", "key", "audit", "revocation"}
	if got := SCResourceTypes(); !slices.Equal(got, sc) {
		t.Errorf("SCResourceTypes() = %v, want %v", got, sc)
	}
	if got := GatehouseResourceTypes(); !slices.Equal(got, own) {
		t.Errorf("GatehouseResourceTypes() = %v, want %v", got, own)
	}
	// Service Center's roles also name types its request mapping never
	// produces (its fixture's ops-viewer names instance and rule).
	roleOnly := []string{"instance", "rule", "tag", "dep", "schema"}
	// backup is Gatehouse's too, but in no built-in role.
	if got := ResourceTypes(); !slices.Equal(got, slices.Concat(sc, roleOnly, own, []string{"backup"})) {
		t.Errorf("ResourceTypes() = %v", got)
	}
	for _, typ := range []string{"service/", "service/schema/x", "Config", "instances", ""} {
		if IsResourceType(typ) {
			t.Errorf("%q accepted", typ)
		}
	}
}

func TestValidatePerms(t *testing.T) {
	t.Parallel()
	ok := []Permission{{Resources: []Resource{{Type: ResourceAccount, Labels: map[string]string{"a": "b"}}}, Verbs: []string{VerbGet, VerbAll}}}
	if err := ValidatePerms(ok); err != nil {
		t.Fatal(err)
	}
	// The types and labels of the custom roles of a Service Center store.
	for _, typ := range []string{ResourceSchema, ResourceConfig, ResourceGovernance, ResourceAccount, ResourceRole, ResourceService, ResourceOps} {
		p := []Permission{{Resources: []Resource{{Type: typ, Labels: map[string]string{"environment": "production"}}}, Verbs: []string{VerbGet, VerbCreate}}}
		if err := ValidatePerms(p); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
	if err := ValidatePerms(nil); err != nil {
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
		t.Run(name, func(t *testing.T) {
			ae, ok := apierror.As(ValidatePerms(perms))
			if !ok || ae.Code != "400001" {
				t.Fatalf("got %v, want 400001", ae)
			}
		})
	}
}
