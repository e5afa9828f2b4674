package httpapi_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/internal/store/etcd/etcdtest"
)

// What was typed into a credential field of a failed request, or as the
// name of an account that was rejected or does not exist, may be a
// password: it is kept nowhere in clear, neither in the log, the audit,
// the lock list and the metrics nor in the store's files. A control name,
// that of a real account, shows the search would find it. Not parallel
// to the other tests: its load would stretch their short lockout windows.
func TestEngineTypedStringsNotKept(t *testing.T) {
	for _, backend := range []string{"bolt", "etcd"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			logs := &servertest.LogBuffer{}
			var dirs []string
			ts := start(t, func(c *server.Config) {
				c.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
				dirs = append(dirs, c.DataDir)
				if backend == "etcd" {
					dir := t.TempDir()
					c.Store, c.EtcdEndpoints = "etcd", etcdtest.Start(t, dir, 1).Endpoints()
					dirs = append(dirs, dir)
				}
			})
			mark := fmt.Sprintf("Zq%x", rand.Uint64())
			ctl := fmt.Sprintf("Ct%x", rand.Uint64())
			typedPW := mark + "!Aa1"
			root := ts.root()
			ts.mkAccount(root, ctl, pw("c"), "developer")
			user := ts.login(ctl, pw("c"))

			// Failed password changes of one's own account.
			wantErr(t, ts.call("POST", "/v4/accounts/"+ctl+"/password", user, map[string]string{"currentPassword": typedPW, "password": pw("n")}),
				401, "401207", "Password is wrong")
			wantErr(t, ts.call("POST", "/v4/accounts/"+ctl+"/password", user, map[string]string{"currentPassword": pw("c"), "password": mark}),
				400, "400001", invalidParams)
			// Failed logins: an unknown name, one failing the name rule, an
			// oversize one, and a wrong password for an account, each
			// until banned.
			names := []string{mark, mark + "!#", strings.Repeat(mark, 5)}
			for _, name := range append(names, ctl) {
				for range 4 {
					if r := ts.loginReply(name, typedPW); r.status != 401 && r.status != 403 {
						t.Fatalf("login %d %s", r.status, r.body)
					}
				}
			}
			// Rejected creates (names failing the rule, a valid name with a
			// password failing the policy), alone and in a batch, and
			// changes of accounts that do not exist.
			var batch []map[string]any
			for _, name := range names[1:] {
				req := map[string]any{"name": name, "password": pw("x"), "roles": []string{"developer"}}
				wantCode(t, ts.call("POST", "/v4/accounts", root, req), 400, "400001")
				batch = append(batch, req)
			}
			batch = append(batch, map[string]any{"name": mark + "x", "password": mark, "roles": []string{"developer"}})
			wantCode(t, ts.call("POST", "/v4/accounts", root, batch[len(batch)-1]), 400, "400001")
			wantStatus(t, ts.call("POST", "/v4/accounts/batch-create", root, map[string]any{"accounts": batch}), 200)
			wantCode(t, ts.call("PUT", "/v4/accounts/"+mark, root, map[string]any{"roles": []string{"developer"}, "status": "inactive"}), 400, "400200")
			wantCode(t, ts.call("DELETE", "/v4/accounts/"+mark, root, nil), 400, "400200")
			wantCode(t, ts.call("POST", "/v4/accounts/"+mark+"/password", root, map[string]string{"password": pw("m")}), 400, "400200")
			wantCode(t, ts.call("GET", "/v4/accounts/"+mark, root, nil), 400, "400200")

			// The locks: the account's by name, the unknown name's masked;
			// an admin lifts the latter by typing the name.
			locks := ts.locks(root)
			var masked []string
			for k, l := range locks {
				if strings.HasPrefix(k, "***") && l.Status == "banned" {
					masked = append(masked, k)
				}
			}
			if locks[ctl+"::127.0.0.1"].Status != "banned" || len(masked) != 1 {
				t.Fatalf("locks %+v: want %s and one masked name banned", locks, ctl)
			}
			lockList := string(ts.call("GET", "/v4/account-locks", root, nil).body)
			wantOK(t, ts.call("DELETE", "/v4/account-locks/"+mark, root, nil))
			if _, ok := ts.locks(root)[masked[0]]; ok {
				t.Fatalf("%s kept after DELETE /v4/account-locks/%s", masked[0], mark)
			}

			var auditBody string
			eventually(t, "the audit records", func() bool {
				var recs []auditRecord
				recs, auditBody = ts.audit(root)
				ban, _ := findAudit(recs, "lockout", "", "success")
				_, clear := findAudit(recs, "lockout.clear", "root", "success")
				_, batched := findAudit(recs, "account.create", "root", "failure")
				return ban.Target == masked[0] && clear && batched
			})
			metrics := string(ts.call("GET", "/metrics", "", nil).body)
			ts.Stop() // flushes the audit and the log

			files := map[string][]byte{}
			for _, dir := range dirs {
				err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
					if err != nil || d.IsDir() {
						return err
					}
					b, err := os.ReadFile(path)
					files[path] = b
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			inFiles := func(s string) string {
				for path, b := range files {
					if bytes.Contains(b, []byte(s)) {
						return path
					}
				}
				return ""
			}
			if inFiles(ctl) == "" || !strings.Contains(logs.String(), ctl) || !strings.Contains(auditBody, ctl) {
				t.Fatal("the control name is missing from the store files, the log or the audit: the search finds nothing")
			}
			for where, text := range map[string]string{"log": logs.String(), "audit": auditBody, "lock list": lockList, "metrics": metrics} {
				if strings.Contains(text, mark) {
					t.Errorf("the %s holds a typed string in clear", where)
				}
			}
			if path := inFiles(mark); path != "" {
				t.Errorf("the store file %s holds a typed string in clear", path)
			}
		})
	}
}
