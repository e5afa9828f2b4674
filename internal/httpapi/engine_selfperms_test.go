package httpapi_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/gatehouse/gatehouse/internal/authz"
)

// TestRootSelfPerms checks that root's self-perms list every resource
// root is granted, with verb "*": the admin role's permissions as they
// are (Service Center's part unchanged), then one for the resources
// granted to root alone (backup). The revocation feed is among admin's.
// Another account holding admin is not granted backup and does not list
// it.
func TestRootSelfPerms(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	root := ts.root()
	wantOK(t, ts.call("POST", "/v4/accounts", root, map[string]any{"name": "ops", "password": "Passw0rd!ops", "roles": []string{"admin"}}))
	ops := ts.login("ops", "Passw0rd!ops")

	selfPerms := func(tok string) role {
		t.Helper()
		r := ts.call("GET", "/v4/self-perms", tok, nil)
		wantStatus(t, r, 200)
		var self role
		r.json(t, &self)
		for _, p := range self.Perms {
			if !slices.Equal(p.Verbs, []string{authz.VerbAll}) {
				t.Fatalf("self-perms %+v: verbs other than *", self.Perms)
			}
		}
		return self
	}
	admin := ts.getRole(root, "admin")
	rootSelf := selfPerms(root)
	want := slices.Concat(authz.SCResourceTypes(), authz.GatehouseResourceTypes(), authz.RootOnlyTypes())
	if got := rootSelf.resourceTypes(); !slices.Equal(got, want) {
		t.Fatalf("root's self-perms name %v, want %v", got, want)
	}
	for _, typ := range []string{authz.ResourceBackup, authz.ResourceRevocation} {
		if !slices.Contains(rootSelf.resourceTypes(), typ) {
			t.Errorf("root's self-perms lack %s", typ)
		}
	}
	adminJSON, _ := json.Marshal(admin.Perms)
	if head, _ := json.Marshal(rootSelf.Perms[:len(admin.Perms)]); string(head) != string(adminJSON) {
		t.Errorf("root's self-perms start %s, want the admin role's %s", head, adminJSON)
	}
	if got := selfPerms(ops).resourceTypes(); slices.Contains(got, authz.ResourceBackup) || !slices.Equal(got, admin.resourceTypes()) {
		t.Errorf("an admin account's self-perms name %v, want the admin role's %v", got, admin.resourceTypes())
	}
}
