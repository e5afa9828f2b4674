package httpapi_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/servertest"
)

// auditRecord is one entry of GET /v4/audit.
type auditRecord struct {
	Time                                       time.Time
	Actor, IP, Action, Target, Outcome, Detail string
}

// audit returns the audit records and the raw answer.
func (ts *testServer) audit(tok string) ([]auditRecord, string) {
	ts.t.Helper()
	r := ts.call("GET", "/v4/audit?limit=1000", tok, nil)
	wantStatus(ts.t, r, 200)
	var list struct {
		Total int
		Data  []auditRecord
	}
	r.json(ts.t, &list)
	if list.Total != len(list.Data) {
		ts.t.Fatalf("audit %s", r.body)
	}
	return list.Data, string(r.body)
}

// findAudit returns the first record matching action, actor and outcome.
func findAudit(recs []auditRecord, action, actor, outcome string) (auditRecord, bool) {
	for _, r := range recs {
		if r.Action == action && r.Actor == actor && r.Outcome == outcome {
			return r, true
		}
	}
	return auditRecord{}, false
}

func TestEngineAudit(t *testing.T) {
	t.Parallel()
	logs := &servertest.LogBuffer{}
	ts := start(t, func(c *server.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	const (
		wrongPW    = "Wr0ng-Secret!1"
		userPW     = "Us3r-Secret!2"
		newPW      = "N3w-Secret!3"
		wrongCurPW = "Wr0ng-Secret!4"
		nameAsPW   = "Typed1nto7heNameField"
	)
	wantErr(t, ts.loginReply("root", wrongPW), 401, "401202", wrongCreds)
	root := ts.root()
	ts.mkAccount(root, "auditee", userPW, "developer")
	user := ts.login("auditee", userPW)
	wantErr(t, ts.call("POST", "/v4/accounts/auditee/password", user, map[string]string{"currentPassword": wrongCurPW, "password": newPW}), 401, "401207", "Password is wrong")
	wantOK(t, ts.call("POST", "/v4/accounts/auditee/password", user, map[string]string{"currentPassword": userPW, "password": newPW}))
	wantErr(t, ts.loginReply(nameAsPW, userPW), 401, "401202", wrongCreds)
	second := ts.login("auditee", newPW)
	wantOK(t, ts.call("DELETE", "/v4/token", second, nil))
	wantErr(t, ts.call("GET", "/v4/accounts", "", nil, "Authorization", "Bearer "+user+"x"), 401, "401201", unauthorized)

	var (
		recs      []auditRecord
		auditBody string
	)
	eventually(t, "audit records of the logins", func() bool {
		recs, auditBody = ts.audit(root)
		_, failed := findAudit(recs, "login", "root", "failure")
		_, ok := findAudit(recs, "login", "root", "success")
		_, revoked := findAudit(recs, "token.revoke", "auditee", "success")
		return failed && ok && revoked
	})
	for i := 1; i < len(recs); i++ {
		if recs[i].Time.After(recs[i-1].Time) {
			t.Fatalf("audit not newest first: %v after %v", recs[i].Time, recs[i-1].Time)
		}
	}
	failed, _ := findAudit(recs, "login", "root", "failure")
	if failed.IP != "127.0.0.1" || failed.Target != "root" || time.Since(failed.Time) > time.Minute {
		t.Fatalf("failed login record %+v", failed)
	}
	for _, want := range []struct{ action, actor, outcome string }{
		{"account.create", "root", "success"},
		{"account.password", "auditee", "failure"},
		{"account.password", "auditee", "success"},
		{"login", "", "failure"}, // an unknown name is not recorded
	} {
		if _, ok := findAudit(recs, want.action, want.actor, want.outcome); !ok {
			t.Fatalf("no audit record %+v in %+v", want, recs)
		}
	}
	wantDetail(t, ts.call("GET", "/v4/audit?limit=0", root, nil), 400, "400001", invalidParams, "limit must be 1 to 1000")

	ts.Stop() // flush the log
	out := logs.String()
	for _, marker := range []string{`"msg":"listening"`, `"msg":"audit"`, `"action":"login"`, `"action":"account.password"`} {
		if !strings.Contains(out, marker) {
			t.Fatalf("log lacks %s", marker)
		}
	}
	for _, secret := range []string{rootPW, wrongPW, userPW, newPW, wrongCurPW, nameAsPW, root, user, second,
		signature(root), signature(user), signature(second)} {
		if strings.Contains(out, secret) {
			t.Fatalf("the log contains a secret %.12s…", secret)
		}
		if strings.Contains(auditBody, secret) {
			t.Fatalf("the audit contains a secret %.12s…", secret)
		}
	}
}

// signature is the signature segment of a JWT.
func signature(tok string) string { return tok[strings.LastIndex(tok, ".")+1:] }
