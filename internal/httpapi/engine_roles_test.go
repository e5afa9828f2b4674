package httpapi_test

import (
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"testing"
)

const (
	roleAbsent   = "Role not exists"
	noPermission = "No permission(s)"
)

// role is the API's Role.
type role struct {
	ID, Name, CreateTime, UpdateTime string
	Perms                            []struct {
		Resources []struct {
			Type   string
			Labels map[string]string
		}
		Verbs []string
	}
}

// resourceTypes returns every resource type a role's perms name.
func (r role) resourceTypes() []string {
	var out []string
	for _, p := range r.Perms {
		for _, res := range p.Resources {
			out = append(out, res.Type)
		}
	}
	return out
}

// getRole fetches a role and checks its shape.
func (ts *testServer) getRole(tok, name string) role {
	ts.t.Helper()
	r := ts.call("GET", "/v4/roles/"+name, tok, nil)
	wantStatus(ts.t, r, 200)
	var m map[string]json.RawMessage
	r.json(ts.t, &m)
	for _, k := range []string{"id", "name", "perms", "createTime", "updateTime"} {
		if _, ok := m[k]; !ok {
			ts.t.Fatalf("role lacks %s: %s", k, r.body)
		}
	}
	if len(m) != 5 {
		ts.t.Fatalf("role has extra fields: %s", r.body)
	}
	var ro role
	r.json(ts.t, &ro)
	if _, err := strconv.ParseInt(ro.CreateTime, 10, 64); err != nil || ro.ID == "" || ro.Name != name {
		ts.t.Fatalf("role %s", r.body)
	}
	return ro
}

func TestEngineRoles(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	root := ts.root()

	t.Run("CRUD", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		wantOK(t, ts.call("POST", "/v4/roles", root, map[string]any{"name": "auditor", "perms": []any{
			map[string]any{"resources": []any{map[string]any{"type": "audit"}, map[string]any{"type": "service", "labels": map[string]string{"env": "prod"}}}, "verbs": []string{"get"}},
		}}))
		ro := ts.getRole(root, "auditor")
		if len(ro.Perms) != 1 || !slices.Equal(ro.resourceTypes(), []string{"audit", "service"}) ||
			ro.Perms[0].Resources[1].Labels["env"] != "prod" || !slices.Equal(ro.Perms[0].Verbs, []string{"get"}) {
			t.Fatalf("role %+v", ro)
		}
		wantErr(t, ts.call("POST", "/v4/roles", root, map[string]any{"name": "auditor"}), 409, "409201", "role name is duplicated")
		wantErr(t, ts.call("POST", "/v4/roles", root, map[string]any{"name": "admin"}), 409, "409201", "role name is duplicated")

		wantOK(t, ts.call("PUT", "/v4/roles/auditor", root, map[string]any{"perms": []any{perm([]string{"*"}, "key", "audit")}}))
		ro = ts.getRole(root, "auditor")
		if len(ro.Perms) != 1 || !slices.Equal(ro.resourceTypes(), []string{"key", "audit"}) || !slices.Equal(ro.Perms[0].Verbs, []string{"*"}) {
			t.Fatalf("updated role %+v", ro)
		}
		wantOK(t, ts.call("PUT", "/v4/roles/auditor", root, map[string]any{"perms": []any{}}))
		if ro = ts.getRole(root, "auditor"); len(ro.Perms) != 0 {
			t.Fatalf("perms not replaced: %+v", ro)
		}

		r := ts.call("GET", "/v4/roles", root, nil)
		wantStatus(t, r, 200)
		var list struct {
			Total int
			Data  []role
		}
		r.json(t, &list)
		var names []string
		for _, ro := range list.Data {
			names = append(names, ro.Name)
		}
		if list.Total != len(list.Data) || !slices.Contains(names, "admin") || !slices.Contains(names, "developer") || !slices.Contains(names, "auditor") {
			t.Fatalf("role list %s", r.body)
		}

		wantOK(t, ts.call("DELETE", "/v4/roles/auditor", root, nil))
		wantErr(t, ts.call("GET", "/v4/roles/auditor", root, nil), 400, "400201", roleAbsent)
	})

	t.Run("built-in roles", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		// Service Center's sets (admin's first permission, developer's
		// only one), and Gatehouse's own resources for admin.
		admin := ts.getRole(root, "admin")
		if len(admin.Perms) != 2 || !slices.Equal(admin.Perms[0].Verbs, []string{"*"}) || !slices.Equal(admin.Perms[1].Verbs, []string{"*"}) ||
			!slices.Equal(admin.resourceTypes(), []string{"account", "config", "role", "service", "governance", "ops", "service/schema", "app", "channel", "session", "key", "audit", "revocation"}) {
			t.Fatalf("admin role %+v", admin)
		}
		dev := ts.getRole(root, "developer")
		if len(dev.Perms) != 1 || !slices.Equal(dev.Perms[0].Verbs, []string{"*"}) ||
			!slices.Equal(dev.resourceTypes(), []string{"config", "service", "governance", "ops", "service/schema"}) {
			t.Fatalf("developer role %+v", dev)
		}
		hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
		if !hex32.MatchString(admin.ID) || !hex32.MatchString(dev.ID) {
			t.Fatalf("role ids %q %q, want 32 hex digits", admin.ID, dev.ID)
		}
		const builtIn = "Forbid to operate build-in role(s)"
		for _, name := range []string{"admin", "developer"} {
			wantErr(t, ts.call("PUT", "/v4/roles/"+name, root, map[string]any{"perms": []any{}}), 403, "403203", builtIn)
			wantErr(t, ts.call("DELETE", "/v4/roles/"+name, root, nil), 403, "403203", builtIn)
		}
	})

	t.Run("missing role", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		wantErr(t, ts.call("GET", "/v4/roles/nosuch", root, nil), 400, "400201", roleAbsent)
		wantErr(t, ts.call("PUT", "/v4/roles/nosuch", root, map[string]any{"perms": []any{}}), 400, "400201", roleAbsent)
		wantErr(t, ts.call("DELETE", "/v4/roles/nosuch", root, nil), 400, "400201", roleAbsent)
	})

	t.Run("bound role", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		ts.mkRole(root, "bound1", perm([]string{"get"}, "service"))
		ts.mkAccount(root, "holder1", pw("h1"), "developer", "bound1")
		wantErr(t, ts.call("DELETE", "/v4/roles/bound1", root, nil), 400, "400205", "Role is bound to some user(s)")
		wantOK(t, ts.call("PUT", "/v4/accounts/holder1", root, map[string]any{"roles": []string{"developer"}}))
		wantOK(t, ts.call("DELETE", "/v4/roles/bound1", root, nil))
	})

	t.Run("validation", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		ts.mkRole(root, "valid1")
		for _, perms := range [][]any{
			{perm([]string{"get"}, "nosuchtype")},
			{perm([]string{"get"}, "")},
			{perm([]string{"read"}, "account")},
			{perm([]string{"GET"}, "account")},
			{perm([]string{"get", "list"}, "account")},
			{perm([]string{}, "account")},
			{perm([]string{"get"})},
		} {
			wantErr(t, ts.call("POST", "/v4/roles", root, map[string]any{"name": "invalid1", "perms": perms}), 400, "400001", invalidParams)
			wantErr(t, ts.call("PUT", "/v4/roles/valid1", root, map[string]any{"perms": perms}), 400, "400001", invalidParams)
		}
		for _, name := range []string{"", "-x", "x-", "a b", "x/y"} {
			wantErr(t, ts.call("POST", "/v4/roles", root, map[string]any{"name": name}), 400, "400001", invalidParams)
		}
		wantErr(t, ts.call("GET", "/v4/roles/invalid1", root, nil), 400, "400201", roleAbsent)
		if ro := ts.getRole(root, "valid1"); len(ro.Perms) != 0 {
			t.Fatalf("invalid update applied: %+v", ro)
		}
	})

	t.Run("RBAC", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		ts.mkAccount(root, "dev1", pw("dv"), "developer")
		ts.mkRole(root, "reader", perm([]string{"get"}, "account"))
		ts.mkAccount(root, "reader1", pw("rd"), "reader")
		dev, reader := ts.login("dev1", pw("dv")), ts.login("reader1", pw("rd"))

		for _, tc := range []struct {
			tok, method, path, detail string
			body                      any
		}{
			{dev, "GET", "/v4/accounts", "role has no permissions[account:get]", nil},
			{dev, "GET", "/v4/accounts/root", "role has no permissions[account:get]", nil},
			{dev, "POST", "/v4/accounts", "role has no permissions[account:create]", map[string]any{"name": "x1"}},
			{dev, "DELETE", "/v4/accounts/reader1", "role has no permissions[account:delete]", nil},
			{dev, "GET", "/v4/account-locks", "role has no permissions[account:get]", nil},
			{dev, "GET", "/v4/roles", "role has no permissions[role:get]", nil},
			{dev, "POST", "/v4/roles", "role has no permissions[role:create]", map[string]any{"name": "x2"}},
			{dev, "GET", "/v4/keys", "role has no permissions[key:get]", nil},
			{dev, "POST", "/v4/keys/rotate", "role has no permissions[key:create]", nil},
			{dev, "GET", "/v4/audit", "role has no permissions[audit:get]", nil},
			{reader, "POST", "/v4/accounts", "role has no permissions[account:create]", map[string]any{"name": "x3", "password": pw("x3"), "roles": []string{"developer"}}},
			{reader, "PUT", "/v4/accounts/dev1", "role has no permissions[account:update]", map[string]any{"status": "inactive"}},
			{reader, "DELETE", "/v4/account-locks/dev1", "role has no permissions[account:delete]", nil},
			{reader, "GET", "/v4/roles", "role has no permissions[role:get]", nil},
		} {
			wantDetail(t, ts.call(tc.method, tc.path, tc.tok, tc.body), 403, "403205", noPermission, tc.detail)
		}
		wantStatus(t, ts.call("GET", "/v4/accounts", reader, nil), 200)
		wantStatus(t, ts.call("GET", "/v4/accounts/dev1", reader, nil), 200)
		wantStatus(t, ts.call("GET", "/v4/account-locks", reader, nil), 200)
		wantErr(t, ts.call("GET", "/v4/accounts/x3", root, nil), 400, "400200", accountAbsent)

		// A role change applies to existing tokens at once.
		wantOK(t, ts.call("PUT", "/v4/roles/reader", root, map[string]any{"perms": []any{perm([]string{"get", "create"}, "account")}}))
		wantOK(t, ts.call("POST", "/v4/accounts", reader, map[string]any{"name": "x4", "password": pw("x4"), "roles": []string{"developer"}}))

		// self-perms needs a token but no permission.
		for _, tc := range []struct {
			tok  string
			want []string
		}{{dev, nil}, {reader, []string{"account"}}, {root, nil}} {
			r := ts.call("GET", "/v4/self-perms", tc.tok, nil)
			wantStatus(t, r, 200)
			var self role // {"perms":[...]} decodes into a role's perms
			r.json(t, &self)
			types := self.resourceTypes()
			switch {
			case tc.want != nil && !slices.Equal(types, tc.want):
				t.Fatalf("self-perms %s, want %v", r.body, tc.want)
			case tc.tok == dev && (slices.Contains(types, "account") || !slices.Contains(types, "service")):
				t.Fatalf("developer self-perms %s", r.body)
			case tc.tok == root && !slices.Contains(types, "account"):
				t.Fatalf("root self-perms %s", r.body)
			}
		}
		wantErr(t, ts.call("GET", "/v4/self-perms", "", nil), 401, "401204", "No authorization header")
	})
}
