package httpapi_test

import (
	"bytes"
	"slices"
	"strconv"
	"testing"

	"github.com/gatehouse/gatehouse/internal/httpapi"
	"github.com/gatehouse/gatehouse/internal/store/backup"
)

// TestBackupEndpoint: root takes a backup; an admin, whose built-in role
// does not hold backup, is refused; a role naming backup grants it; every
// backup is audited.
func TestBackupEndpoint(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	root := ts.root()
	ts.mkAccount(root, "opsadmin", pw("oa"), "admin")
	wantStatus(t, ts.call("POST", "/v4/roles", root, map[string]any{"name": "backup-operator",
		"perms": []map[string]any{{"resources": []map[string]string{{"type": "backup"}}, "verbs": []string{"get"}}}}), 200)
	ts.mkAccount(root, "operator", pw("op"), "backup-operator")

	r := ts.call("GET", "/v4/backup", root, nil)
	wantStatus(t, r, 200)
	if ct := r.header.Get("Content-Type"); ct != backup.ContentType {
		t.Errorf("Content-Type %q", ct)
	}
	h, items, err := backup.Read(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if h.Backend != "bolt" || strconv.FormatInt(h.Revision, 10) != r.header.Get(httpapi.RevisionHeader) || h.Items != len(items) {
		t.Errorf("header %+v, revision header %q", h, r.header.Get(httpapi.RevisionHeader))
	}
	var keys []string
	for _, it := range items {
		keys = append(keys, it.Key)
	}
	for _, k := range []string{"accounts/root", "accounts/opsadmin", "accounts/operator", "roles/backup-operator"} {
		if !slices.Contains(keys, k) {
			t.Errorf("the backup lacks %s: %v", k, keys)
		}
	}

	admin := ts.login("opsadmin", pw("oa"))
	wantDetail(t, ts.call("GET", "/v4/backup", admin, nil), 403, "403205", noPermission, "role has no permissions[backup:get]")
	wantErr(t, ts.call("GET", "/v4/backup", "", nil), 401, "401204", "No authorization header")
	wantStatus(t, ts.call("GET", "/v4/backup", ts.login("operator", pw("op")), nil), 200)

	var audit struct {
		Data []struct{ Actor, Action, Outcome string }
	}
	ts.call("GET", "/v4/audit?limit=1000", root, nil).json(t, &audit)
	var by []string
	for _, rec := range audit.Data {
		if rec.Action == "store.backup" && rec.Outcome == "success" {
			by = append(by, rec.Actor)
		}
	}
	slices.Sort(by)
	if !slices.Equal(by, []string{"operator", "root"}) {
		t.Errorf("backups audited for %v", by)
	}
}
