package httpapi_test

import (
	"testing"
	"time"
)

const unauthorized = "Request unauthorized"

// wantRevoked checks that tok is refused as revoked.
func wantRevoked(t *testing.T, ts *testServer, tok string) {
	t.Helper()
	wantDetail(t, ts.call("GET", "/v4/self-perms", tok, nil), 401, "401201", unauthorized, "token revoked")
}

// wantIssuedInPast checks that the iat of tok is not in the future:
// Service Center's verifiers refuse such a token.
func wantIssuedInPast(t *testing.T, tok string) {
	t.Helper()
	_, claims := tokenParts(t, tok)
	if iat := unixClaim(t, claims, "iat"); iat.After(time.Now()) {
		t.Fatalf("iat %v is in the future", iat)
	}
}

// wantValid checks that tok is accepted.
func wantValid(t *testing.T, ts *testServer, tok string) {
	t.Helper()
	wantStatus(t, ts.call("GET", "/v4/self-perms", tok, nil), 200)
}

func TestEngineRevocation(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	root := ts.root()

	t.Run("logout", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		ts.mkAccount(root, "out1", pw("o1"), "admin")
		t1, t2 := ts.login("out1", pw("o1")), ts.login("out1", pw("o1"))
		wantValid(t, ts, t1) // cached before the logout
		wantOK(t, ts.call("DELETE", "/v4/token", t1, nil))
		wantRevoked(t, ts, t1)
		wantDetail(t, ts.call("GET", "/v4/accounts", t1, nil), 401, "401201", unauthorized, "token revoked")
		wantDetail(t, ts.call("DELETE", "/v4/token", t1, nil), 401, "401201", unauthorized, "token revoked")
		wantValid(t, ts, t2)
		wantStatus(t, ts.call("GET", "/v4/accounts", t2, nil), 200)
		wantErr(t, ts.call("DELETE", "/v4/token", "", nil), 401, "401204", "No authorization header")
	})

	t.Run("password change by an admin", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		ts.mkAccount(root, "pwc1", pw("p1"), "developer")
		old := ts.login("pwc1", pw("p1"))
		wantValid(t, ts, old)
		wantOK(t, ts.call("POST", "/v4/accounts/pwc1/password", root, map[string]any{"password": pw("p2")}))
		wantRevoked(t, ts, old)
		wantValid(t, ts, ts.login("pwc1", pw("p2")))
	})

	t.Run("own password change", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		ts.mkAccount(root, "pwc2", pw("p1"), "developer")
		old, other := ts.login("pwc2", pw("p1")), ts.login("pwc2", pw("p1"))
		wantOK(t, ts.call("POST", "/v4/accounts/pwc2/password", old, map[string]any{"currentPassword": pw("p1"), "password": pw("p2")}))
		// A token issued right after the change works at once, and a
		// second change right after revokes it too.
		fresh := ts.login("pwc2", pw("p2"))
		wantIssuedInPast(t, fresh)
		wantValid(t, ts, fresh)
		wantRevoked(t, ts, old)
		wantRevoked(t, ts, other)
		wantOK(t, ts.call("POST", "/v4/accounts/pwc2/password", fresh, map[string]any{"currentPassword": pw("p2"), "password": pw("p3")}))
		wantRevoked(t, ts, fresh)
		wantValid(t, ts, ts.login("pwc2", pw("p3")))
	})

	t.Run("deactivation", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		ts.mkAccount(root, "deact1", pw("d1"), "developer")
		old := ts.login("deact1", pw("d1"))
		wantValid(t, ts, old)
		wantOK(t, ts.call("PUT", "/v4/accounts/deact1", root, map[string]any{"roles": []string{"developer"}, "status": "inactive"}))
		wantRevoked(t, ts, old)
		wantErr(t, ts.loginReply("deact1", pw("d1")), 403, "403206", "Account is inactive")
		// Reactivation does not bring old tokens back.
		wantOK(t, ts.call("PUT", "/v4/accounts/deact1", root, map[string]any{"roles": []string{"developer"}, "status": "active"}))
		wantRevoked(t, ts, old)
		wantValid(t, ts, ts.login("deact1", pw("d1")))
	})

	t.Run("role change", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		ts.mkAccount(root, "rolec1", pw("r1"), "admin")
		old := ts.login("rolec1", pw("r1"))
		wantStatus(t, ts.call("GET", "/v4/accounts", old, nil), 200)
		wantOK(t, ts.call("PUT", "/v4/accounts/rolec1", root, map[string]any{"roles": []string{"developer"}}))
		wantRevoked(t, ts, old)
		wantDetail(t, ts.call("GET", "/v4/accounts", old, nil), 401, "401201", unauthorized, "token revoked")
		fresh := ts.login("rolec1", pw("r1"))
		_, claims := tokenParts(t, fresh)
		if roles, _ := claims["roles"].([]any); len(roles) != 1 || roles[0] != "developer" {
			t.Fatalf("roles claim %v after the change", claims["roles"])
		}
		wantDetail(t, ts.call("GET", "/v4/accounts", fresh, nil), 403, "403205", noPermission, "role has no permissions[account:get]")
	})

	t.Run("deletion", func(t *testing.T) {
		t.Parallel()
		ts := ts.as(t)
		ts.mkAccount(root, "gone1", pw("g1"), "admin")
		old := ts.login("gone1", pw("g1"))
		wantIssuedInPast(t, old)
		wantValid(t, ts, old)
		wantOK(t, ts.call("DELETE", "/v4/accounts/gone1", root, nil))
		const deleted = "The account that owns the token is deleted"
		wantErr(t, ts.call("GET", "/v4/self-perms", old, nil), 401, "401206", deleted)
		wantErr(t, ts.call("GET", "/v4/accounts", old, nil), 401, "401206", deleted)
		// An account created again under the same name does not inherit
		// the old tokens.
		ts.mkAccount(root, "gone1", pw("g2"), "admin")
		wantRevoked(t, ts, old)
		wantValid(t, ts, ts.login("gone1", pw("g2")))
	})
}
