package httpapi_test

import (
	"testing"
)

func TestEngineRestart(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	root := ts.root()
	ts.mkRole(root, "persisted", perm([]string{"get"}, "account"))
	ts.mkAccount(root, "keeper", pw("k1"), "persisted")
	keeper := ts.login("keeper", pw("k1"))
	ts.mkAccount(root, "leaver", pw("l1"), "developer")
	leaver := ts.login("leaver", pw("l1"))
	wantOK(t, ts.call("DELETE", "/v4/token", leaver, nil))
	kid := activeKID(t, ts)
	before := ts.call("GET", "/v4/accounts/keeper", root, nil)
	wantStatus(t, before, 200)

	ts.restart()

	if got := activeKID(t, ts); got != kid {
		t.Fatalf("active key %s after restart, was %s", got, kid)
	}
	if keys := ts.keys(root); len(keys) != 1 || keys[0].ID != kid {
		t.Fatalf("keys after restart %+v", keys)
	}
	// Tokens issued before the restart are still valid, or still revoked.
	after := ts.call("GET", "/v4/accounts/keeper", keeper, nil)
	wantStatus(t, after, 200)
	if string(after.body) != string(before.body) {
		t.Fatalf("account changed across the restart: %s, was %s", after.body, before.body)
	}
	wantRevoked(t, ts, leaver)
	ro := ts.getRole(root, "persisted")
	if len(ro.Perms) != 1 || ro.Perms[0].Verbs[0] != "get" {
		t.Fatalf("role after restart %+v", ro)
	}
	wantValid(t, ts, ts.login("keeper", pw("k1")))
	ts.login("root", rootPW)
}
