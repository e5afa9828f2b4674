package httpapi_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpapi"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/backup"
	"github.com/gatehouse/gatehouse/internal/store/bolt"
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

// TestBackupCutAtShutdown: a backup whose client stops reading does not
// hold up the server's shutdown, though its snapshot holds the store
// open: the shutdown cuts it, and the client is left with a backup
// without its end.
func TestBackupCutAtShutdown(t *testing.T) {
	t.Parallel()
	cfg := server.DefaultConfig()
	cfg.DataDir = t.TempDir()
	st, err := server.OpenStore(t.Context(), cfg, slog.New(slog.DiscardHandler), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// 32 MiB the server does not read otherwise: more than the
	// connection's buffers hold.
	value := bytes.Repeat([]byte("x"), 64<<10)
	for i := range 512 {
		if _, err := st.Put(t.Context(), store.Item{Key: fmt.Sprintf("zz-filler/%04d", i), Value: value}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	ts := start(t, func(c *server.Config) { c.DataDir = cfg.DataDir })
	req, err := http.NewRequest("GET", ts.Base+"/v4/backup", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+ts.root())
	resp, err := http.DefaultClient.Do(req) // the answer started; its body is not read yet
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	stopped := make(chan struct{})
	go func() {
		ts.Stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(time.Minute):
		t.Fatal("the shutdown waits for the backup's client")
	}
	if _, err := backup.Verify(resp.Body); err == nil {
		t.Fatal("the backup cut by the shutdown verifies")
	}
}
