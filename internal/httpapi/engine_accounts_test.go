package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	invalidParams = "Invalid parameter(s)"
	accountAbsent = "Account not exists"
)

// wantAccountShape checks the JSON of one account: exactly the fields of
// SPEC §3.3, never a password or hash.
func wantAccountShape(t *testing.T, raw json.RawMessage, name string, roles []string, status string) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"createTime", "id", "name", "roles", "status", "updateTime"}; !slices.Equal(keys, want) {
		t.Fatalf("account fields %v, want %v", keys, want)
	}
	var a struct {
		ID, Name, Status, CreateTime, UpdateTime string
		Roles                                    []string
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatal(err)
	}
	if a.ID == "" || a.Name != name || a.Status != status || !slices.Equal(a.Roles, roles) {
		t.Fatalf("account %s", raw)
	}
	for _, v := range []string{a.CreateTime, a.UpdateTime} {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < processStart.Unix()-1 || n > time.Now().Unix()+1 {
			t.Fatalf("account time %q is not a unix second since the tests started", v)
		}
	}
}

// wantNoSecrets fails if an answer contains one of secrets or a password
// hash.
func wantNoSecrets(t *testing.T, body []byte, secrets ...string) {
	t.Helper()
	for _, s := range append([]string{"$argon2id$", "passwordHash"}, secrets...) {
		if strings.Contains(string(body), s) {
			t.Fatalf("answer contains %q: %s", s, body)
		}
	}
}

// processStart is when the tests started: every account they see was
// created since.
var processStart = time.Now()

func TestEngineAccounts(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	root := ts.root()
	ts.mkAccount(root, "admin2", pw("a2"), "admin")
	admin2 := ts.login("admin2", pw("a2"))

	t.Run("create get list", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		wantOK(t, ts.call("POST", "/v4/accounts", root, map[string]any{"name": "alice", "password": pw("al"), "roles": []string{"developer", "admin", "developer"}}))
		r := ts.call("GET", "/v4/accounts/alice", root, nil)
		wantStatus(t, r, 200)
		wantNoSecrets(t, r.body, pw("al"))
		wantAccountShape(t, r.body, "alice", []string{"developer", "admin"}, "active")

		wantOK(t, ts.call("POST", "/v4/accounts", root, map[string]any{"name": "bob", "password": pw("bo"), "roles": []string{"developer"}, "status": "inactive"}))
		r = ts.call("GET", "/v4/accounts", root, nil)
		wantStatus(t, r, 200)
		wantNoSecrets(t, r.body, pw("al"), pw("bo"), rootPW)
		var list struct {
			Total int
			Data  []json.RawMessage
		}
		r.json(t, &list)
		if list.Total != len(list.Data) || list.Total < 4 {
			t.Fatalf("list %s", r.body)
		}
		found := 0
		for _, raw := range list.Data {
			var a struct{ Name string }
			_ = json.Unmarshal(raw, &a)
			switch a.Name {
			case "root":
				wantAccountShape(t, raw, "root", []string{"admin"}, "active")
				found++
			case "bob":
				wantAccountShape(t, raw, "bob", []string{"developer"}, "inactive")
				found++
			}
		}
		if found != 2 {
			t.Fatalf("list lacks root or bob: %s", r.body)
		}
	})

	t.Run("duplicate", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		ts.mkAccount(root, "dup1", pw("d1"), "developer")
		for _, name := range []string{"dup1", "root"} {
			r := ts.call("POST", "/v4/accounts", root, map[string]any{"name": name, "password": pw("d2"), "roles": []string{"developer"}})
			wantErr(t, r, 409, "409200", "account name is duplicated")
		}
	})

	t.Run("invalid fields", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		for _, tc := range []struct {
			name string
			body map[string]any
			code string
		}{
			{"empty name", map[string]any{"name": "", "password": pw("x"), "roles": []string{"developer"}}, "400001"},
			{"leading dash", map[string]any{"name": "-abc", "password": pw("x"), "roles": []string{"developer"}}, "400001"},
			{"trailing dot", map[string]any{"name": "abc.", "password": pw("x"), "roles": []string{"developer"}}, "400001"},
			{"space", map[string]any{"name": "a b", "password": pw("x"), "roles": []string{"developer"}}, "400001"},
			{"non-ASCII", map[string]any{"name": "名字", "password": pw("x"), "roles": []string{"developer"}}, "400001"},
			{"65 chars", map[string]any{"name": strings.Repeat("a", 65), "password": pw("x"), "roles": []string{"developer"}}, "400001"},
			{"no password", map[string]any{"name": "nopw", "roles": []string{"developer"}}, "400001"},
			{"short password", map[string]any{"name": "p1", "password": "Sh0rt!", "roles": []string{"developer"}}, "400001"},
			{"33 chars", map[string]any{"name": "p2", "password": "Aa1!" + strings.Repeat("x", 29), "roles": []string{"developer"}}, "400001"},
			{"no upper", map[string]any{"name": "p3", "password": "passw0rd!x", "roles": []string{"developer"}}, "400001"},
			{"no lower", map[string]any{"name": "p4", "password": "PASSW0RD!X", "roles": []string{"developer"}}, "400001"},
			{"no digit", map[string]any{"name": "p5", "password": "Password!x", "roles": []string{"developer"}}, "400001"},
			{"no special", map[string]any{"name": "p6", "password": "Passw0rdxx", "roles": []string{"developer"}}, "400001"},
			{"password is name", map[string]any{"name": "Abcd-123", "password": "Abcd-123", "roles": []string{"developer"}}, "400001"},
			{"password is name reversed", map[string]any{"name": "Abcd-123", "password": "321-dcbA", "roles": []string{"developer"}}, "400001"},
			{"no roles", map[string]any{"name": "r1", "password": pw("x")}, "400001"},
			{"zero roles", map[string]any{"name": "r2", "password": pw("x"), "roles": []string{}}, "400001"},
			{"six roles", map[string]any{"name": "r3", "password": pw("x"), "roles": []string{"admin", "developer", "a", "b", "c", "d"}}, "400001"},
			{"invalid role name", map[string]any{"name": "r4", "password": pw("x"), "roles": []string{"-bad"}}, "400001"},
			{"bad status", map[string]any{"name": "s1", "password": pw("x"), "roles": []string{"developer"}, "status": "frozen"}, "400001"},
			{"unknown role", map[string]any{"name": "r5", "password": pw("x"), "roles": []string{"developer", "nosuchrole"}}, "400202"},
		} {
			r := ts.call("POST", "/v4/accounts", root, tc.body)
			msg := map[string]string{"400001": invalidParams, "400202": "Account has invalid role(s)"}[tc.code]
			e := wantErr(t, r, 400, tc.code, msg)
			if p, _ := tc.body["password"].(string); p != "" && strings.Contains(e.Detail, p) {
				t.Fatalf("%s: detail echoes the password: %s", tc.name, r.body)
			}
			if name, _ := tc.body["name"].(string); name != "" {
				wantErr(t, ts.call("GET", "/v4/accounts/"+url.PathEscape(name), root, nil), 400, "400200", accountAbsent)
			}
		}
		// The boundaries of the rules are accepted.
		ts.mkAccount(root, strings.Repeat("b", 64), "Aa1!"+strings.Repeat("x", 28), "developer")
		ts.mkAccount(root, "c", "Aa1!xxxx", "admin", "developer")
		ts.mkAccount(root, "d_e-f.g", "Ünïcode1§x", "developer")
	})

	t.Run("update", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		ts.mkAccount(root, "carol", pw("ca"), "developer")
		wantOK(t, ts.call("PUT", "/v4/accounts/carol", root, map[string]any{"roles": []string{"admin"}}))
		r := ts.call("GET", "/v4/accounts/carol", root, nil)
		wantAccountShape(t, r.body, "carol", []string{"admin"}, "active")
		// As in Service Center, roles are required and an empty status
		// leaves the status alone.
		wantOK(t, ts.call("PUT", "/v4/accounts/carol", root, map[string]any{"roles": []string{"admin"}, "status": "inactive"}))
		r = ts.call("GET", "/v4/accounts/carol", root, nil)
		wantAccountShape(t, r.body, "carol", []string{"admin"}, "inactive")
		wantOK(t, ts.call("PUT", "/v4/accounts/carol", root, map[string]any{"status": "active", "roles": []string{"developer"}}))
		r = ts.call("GET", "/v4/accounts/carol", root, nil)
		wantAccountShape(t, r.body, "carol", []string{"developer"}, "active")

		for _, body := range []any{
			map[string]any{},
			map[string]any{"roles": nil, "status": nil},
			map[string]any{"roles": []string{}},
			map[string]any{"roles": []string{"a", "b", "c", "d", "e", "f"}},
			map[string]any{"status": "inactive"},
			map[string]any{"roles": []string{"developer"}, "status": "frozen"},
		} {
			wantErr(t, ts.call("PUT", "/v4/accounts/carol", root, body), 400, "400001", invalidParams)
		}
		wantErr(t, ts.call("PUT", "/v4/accounts/carol", root, map[string]any{"roles": []string{"nosuchrole"}}), 400, "400202", "Account has invalid role(s)")
		r = ts.call("GET", "/v4/accounts/carol", root, nil)
		wantAccountShape(t, r.body, "carol", []string{"developer"}, "active")
		wantOK(t, ts.call("PUT", "/v4/accounts/carol", root, map[string]any{"roles": []string{"developer"}, "status": ""}))
		r = ts.call("GET", "/v4/accounts/carol", root, nil)
		wantAccountShape(t, r.body, "carol", []string{"developer"}, "active")
	})

	t.Run("built-in and own account", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		const builtIn, own = "Forbid to operate build-in account(s)", "Forbid to operate your own account"
		for _, tok := range []string{root, admin2} {
			wantErr(t, ts.call("PUT", "/v4/accounts/root", tok, map[string]any{"roles": []string{"developer"}}), 403, "403202", builtIn)
			wantErr(t, ts.call("PUT", "/v4/accounts/root", tok, map[string]any{"roles": []string{"admin"}, "status": "inactive"}), 403, "403202", builtIn)
			wantErr(t, ts.call("DELETE", "/v4/accounts/root", tok, nil), 403, "403202", builtIn)
		}
		wantErr(t, ts.call("PUT", "/v4/accounts/admin2", admin2, map[string]any{"roles": []string{"developer"}}), 403, "403204", own)
		wantErr(t, ts.call("PUT", "/v4/accounts/admin2", admin2, map[string]any{"roles": []string{"admin"}, "status": "inactive"}), 403, "403204", own)
		wantErr(t, ts.call("DELETE", "/v4/accounts/admin2", admin2, nil), 403, "403204", own)
		r := ts.call("GET", "/v4/accounts/admin2", root, nil)
		wantAccountShape(t, r.body, "admin2", []string{"admin"}, "active")
	})

	t.Run("missing account", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		wantErr(t, ts.call("GET", "/v4/accounts/nosuch", root, nil), 400, "400200", accountAbsent)
		wantErr(t, ts.call("PUT", "/v4/accounts/nosuch", root, map[string]any{"roles": []string{"developer"}, "status": "active"}), 400, "400200", accountAbsent)
		wantErr(t, ts.call("DELETE", "/v4/accounts/nosuch", root, nil), 400, "400200", accountAbsent)
		wantErr(t, ts.call("POST", "/v4/accounts/nosuch/password", root, map[string]any{"password": pw("n")}), 400, "400200", accountAbsent)
	})

	t.Run("delete", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		ts.mkAccount(root, "dave", pw("da"), "developer")
		wantOK(t, ts.call("DELETE", "/v4/accounts/dave", admin2, nil))
		wantErr(t, ts.call("GET", "/v4/accounts/dave", root, nil), 400, "400200", accountAbsent)
		wantErr(t, ts.call("DELETE", "/v4/accounts/dave", root, nil), 400, "400200", accountAbsent)
		wantErr(t, ts.loginReply("dave", pw("da")), 401, "401202", "User name or password is wrong")
	})

	t.Run("batch create", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		ts.mkAccount(root, "bdup", pw("bd"), "developer")
		r := ts.call("POST", "/v4/accounts/batch-create", root, map[string]any{"accounts": []map[string]any{
			{"name": "b1", "password": pw("b1"), "roles": []string{"developer"}},
			{"name": "bdup", "password": pw("b2"), "roles": []string{"developer"}},
			{"name": "-b3", "password": pw("b3"), "roles": []string{"developer"}},
			{"name": "b4", "password": "weak", "roles": []string{"developer"}},
			{"name": "b5", "password": pw("b5"), "roles": []string{"nosuchrole"}},
			{"name": "b6", "password": pw("b6"), "roles": []string{"admin"}, "status": "inactive"},
			{"name": "b1", "password": pw("b1"), "roles": []string{"developer"}},
		}})
		wantStatus(t, r, 200)
		wantNoSecrets(t, r.body, "weak", pw("b1"))
		var out struct {
			Accounts []map[string]string
		}
		r.json(t, &out)
		want := []struct{ name, code, msg string }{
			{"b1", "", ""},
			{"bdup", "409200", "account name is duplicated"},
			{"-b3", "400001", invalidParams},
			{"b4", "400001", invalidParams},
			{"b5", "400202", "Account has invalid role(s)"},
			{"b6", "", ""},
			{"b1", "409200", "account name is duplicated"},
		}
		if len(out.Accounts) != len(want) {
			t.Fatalf("batch answer %s", r.body)
		}
		for i, w := range want {
			a := out.Accounts[i]
			if a["name"] != w.name || a["errorCode"] != w.code || a["errorMessage"] != w.msg {
				t.Fatalf("batch result %d: %v, want %+v", i, a, w)
			}
			if w.code == "" && len(a) != 1 {
				t.Fatalf("successful batch result %d carries more than a name: %v", i, a)
			}
			if w.code != "" && a["detail"] == "" && w.code != "409200" {
				t.Fatalf("failed batch result %d has no detail: %v", i, a)
			}
		}
		wantStatus(t, ts.call("GET", "/v4/accounts/b1", root, nil), 200)
		r = ts.call("GET", "/v4/accounts/b6", root, nil)
		wantAccountShape(t, r.body, "b6", []string{"admin"}, "inactive")
		ts.login("b1", pw("b1"))

		many := func(n int) map[string]any {
			accs := make([]map[string]any, n)
			for i := range accs {
				accs[i] = map[string]any{"name": fmt.Sprintf("many%d", i), "password": pw("m"), "roles": []string{"developer"}}
			}
			return map[string]any{"accounts": accs}
		}
		for _, body := range []any{many(0), many(21), map[string]any{}, map[string]any{"accounts": nil}} {
			wantErr(t, ts.call("POST", "/v4/accounts/batch-create", root, body), 400, "400001", invalidParams)
		}
		wantErr(t, ts.call("GET", "/v4/accounts/many0", root, nil), 400, "400200", accountAbsent)
	})

	t.Run("password change", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		ts.mkAccount(root, "erin", pw("er"), "developer")
		ts.mkAccount(root, "frank", pw("fr"), "developer")
		erin := ts.login("erin", pw("er"))
		path := "/v4/accounts/erin/password"

		wantErr(t, ts.call("POST", path, erin, map[string]any{"password": pw("er2")}), 400, "400001", invalidParams)
		wantErr(t, ts.call("POST", path, erin, map[string]any{"currentPassword": "", "password": pw("er2")}), 400, "400001", invalidParams)
		wantErr(t, ts.call("POST", path, erin, map[string]any{"currentPassword": pw("er")}), 400, "400001", invalidParams)
		wantErr(t, ts.call("POST", path, erin, map[string]any{"currentPassword": pw("er"), "password": pw("er")}), 400, "400206", "New password is bad")
		wantErr(t, ts.call("POST", path, erin, map[string]any{"currentPassword": pw("er"), "password": "weakpass"}), 400, "400001", invalidParams)
		r := ts.call("POST", path, erin, map[string]any{"currentPassword": pw("wrong"), "password": pw("er2")})
		wantErr(t, r, 401, "401207", "Password is wrong")
		wantNoSecrets(t, r.body, pw("wrong"), pw("er2"))
		wantErr(t, ts.call("POST", "/v4/accounts/frank/password", erin, map[string]any{"currentPassword": pw("fr"), "password": pw("fr2")}), 403, "403001", "Forbidden")
		wantErr(t, ts.call("POST", "/v4/accounts/root/password", erin, map[string]any{"currentPassword": rootPW, "password": pw("rt")}), 403, "403001", "Forbidden")
		ts.login("frank", pw("fr"))

		wantOK(t, ts.call("POST", path, erin, map[string]any{"currentPassword": pw("er"), "password": pw("er2")}))
		wantErr(t, ts.loginReply("erin", pw("er")), 401, "401202", "User name or password is wrong")
		wantDetail(t, ts.call("GET", "/v4/self-perms", erin, nil), 401, "401201", "Request unauthorized", "token revoked")
		erin2 := ts.login("erin", pw("er2"))
		wantStatus(t, ts.call("GET", "/v4/self-perms", erin2, nil), 200)

		// An admin sets another account's password without the current one.
		wantOK(t, ts.call("POST", "/v4/accounts/erin/password", admin2, map[string]any{"password": pw("er3")}))
		wantDetail(t, ts.call("GET", "/v4/self-perms", erin2, nil), 401, "401201", "Request unauthorized", "token revoked")
		wantErr(t, ts.loginReply("erin", pw("er2")), 401, "401202", "User name or password is wrong")
		ts.login("erin", pw("er3"))
		// ...but still needs it for its own.
		wantErr(t, ts.call("POST", "/v4/accounts/admin2/password", admin2, map[string]any{"password": pw("a3")}), 400, "400001", invalidParams)
	})
}

// Only root changes root: an admin gets 403202 for root's password, status
// and roles (SC lets any admin reset root's password), while root still
// changes its own password. Root's password changes here, so the test has
// a server of its own.
func TestRootChangedByRootAlone(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	root := ts.root()
	ts.mkAccount(root, "admin3", pw("a3"), "admin")
	admin3 := ts.login("admin3", pw("a3"))
	const builtIn = "Forbid to operate build-in account(s)"

	wantErr(t, ts.call("POST", "/v4/accounts/root/password", admin3, map[string]any{"password": pw("rt")}), 403, "403202", builtIn)
	wantErr(t, ts.call("POST", "/v4/accounts/root/password", admin3, map[string]any{"currentPassword": rootPW, "password": pw("rt")}), 403, "403202", builtIn)
	wantErr(t, ts.call("PUT", "/v4/accounts/root", admin3, map[string]any{"roles": []string{"admin"}, "status": "inactive"}), 403, "403202", builtIn)
	wantErr(t, ts.call("PUT", "/v4/accounts/root", admin3, map[string]any{"roles": []string{"developer"}}), 403, "403202", builtIn)
	wantErr(t, ts.loginReply("root", pw("rt")), 401, "401202", "User name or password is wrong")
	wantStatus(t, ts.call("GET", "/v4/self-perms", root, nil), 200)
	r := ts.call("GET", "/v4/accounts/root", admin3, nil)
	wantAccountShape(t, r.body, "root", []string{"admin"}, "active")

	wantOK(t, ts.call("POST", "/v4/accounts/root/password", root, map[string]any{"currentPassword": rootPW, "password": pw("rt")}))
	wantDetail(t, ts.call("GET", "/v4/self-perms", root, nil), 401, "401201", "Request unauthorized", "token revoked")
	wantStatus(t, ts.call("GET", "/v4/self-perms", ts.login("root", pw("rt")), nil), 200)
}
