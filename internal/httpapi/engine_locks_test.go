package httpapi_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/testclock"
)

const (
	blocked    = "Account blocked"
	wrongCreds = "User name or password is wrong"
)

// lock is one entry of GET /v4/account-locks.
type lock struct {
	Key       string
	Status    string
	ReleaseAt int64
}

// locks returns the lockout keys by key.
func (ts *testServer) locks(tok string) map[string]lock {
	ts.t.Helper()
	r := ts.call("GET", "/v4/account-locks", tok, nil)
	wantStatus(ts.t, r, 200)
	var list struct {
		Total int
		Data  []lock
	}
	r.json(ts.t, &list)
	if list.Total != len(list.Data) {
		ts.t.Fatalf("locks %s", r.body)
	}
	out := map[string]lock{}
	for _, l := range list.Data {
		out[l.Key] = l
	}
	return out
}

// failLogins makes n failed logins for name, each answered 401202.
func (ts *testServer) failLogins(name string, n int, headers ...string) {
	ts.t.Helper()
	for range n {
		wantErr(ts.t, ts.loginReply(name, "Wr0ng-Password!", headers...), 401, "401202", wrongCreds)
	}
}

// TestEngineLockout runs on a settable clock, so that windows and bans
// pass without sleeping however long a password hash takes; its subtests
// run in turn, since moving the clock moves it for all of them.
func TestEngineLockout(t *testing.T) {
	t.Parallel()
	const ban, window = 3 * time.Minute, 4 * time.Minute
	clock := testclock.New(time.Now())
	ts := start(t, func(c *server.Config) { c.LockoutBan, c.LockoutWindow, c.Now = ban, window, clock.Now })
	root := ts.root()
	accounts := []string{"ban1", "clear1", "cur1", "del1", "xff1", "win1"}
	for _, name := range accounts {
		ts.mkAccount(root, name, pw(name), "developer")
	}

	t.Run("ban and release", func(t *testing.T) {
		ts := ts.as(t)
		ts.failLogins("ban1", 3)
		banned := clock.Now()
		wantErr(t, ts.loginReply("ban1", pw("ban1")), 403, "403201", blocked)
		wantErr(t, ts.loginReply("ban1", "Wr0ng-Password!"), 403, "403201", blocked)
		l, ok := ts.locks(root)["ban1::127.0.0.1"]
		if !ok || l.Status != "banned" {
			t.Fatalf("locks lack a ban of ban1: %+v", ts.locks(root))
		}
		if want := banned.Add(ban).Unix(); l.ReleaseAt != want {
			t.Fatalf("releaseAt %d, want %d: %s after the ban", l.ReleaseAt, want, ban)
		}
		clock.Advance(ban - time.Second)
		wantErr(t, ts.loginReply("ban1", pw("ban1")), 403, "403201", blocked)
		clock.Advance(2 * time.Second)
		ts.login("ban1", pw("ban1"))
		if _, ok := ts.locks(root)["ban1::127.0.0.1"]; ok {
			t.Fatal("lock kept after a successful login")
		}
	})

	t.Run("success clears attempts", func(t *testing.T) {
		ts := ts.as(t)
		ts.failLogins("clear1", 2)
		if l := ts.locks(root)["clear1::127.0.0.1"]; l.Status != "attempted" || l.ReleaseAt == 0 {
			t.Fatalf("lock after 2 failures: %+v", l)
		}
		ts.login("clear1", pw("clear1"))
		ts.failLogins("clear1", 2)
		ts.login("clear1", pw("clear1"))
	})

	t.Run("unknown name", func(t *testing.T) {
		ts := ts.as(t)
		ts.failLogins("ghost1", 3)
		wantErr(t, ts.loginReply("ghost1", pw("ghost1")), 403, "403201", blocked)
		// The name of no account is listed masked.
		masked := func() []string {
			var keys []string
			for k, l := range ts.locks(root) {
				if strings.Contains(k, "ghost1") {
					t.Fatalf("unknown name listed in clear: %s", k)
				}
				if strings.HasPrefix(k, "***") && strings.HasSuffix(k, "::127.0.0.1") && l.Status == "banned" {
					keys = append(keys, k)
				}
			}
			return keys
		}
		if keys := masked(); len(keys) != 1 {
			t.Fatalf("want one masked ban, got %v", keys)
		}
		// An admin lifts it by typing the name.
		wantOK(t, ts.call("DELETE", "/v4/account-locks/ghost1", root, nil))
		if keys := masked(); len(keys) != 0 {
			t.Fatalf("masked ban kept after DELETE: %v", keys)
		}
		ts.failLogins("ghost1", 1)
	})

	t.Run("wrong currentPassword", func(t *testing.T) {
		ts := ts.as(t)
		tok := ts.login("cur1", pw("cur1"))
		for range 3 {
			r := ts.call("POST", "/v4/accounts/cur1/password", tok, map[string]any{"currentPassword": "Wr0ng-Password!", "password": pw("new")})
			wantErr(t, r, 401, "401207", "Password is wrong")
		}
		wantErr(t, ts.loginReply("cur1", pw("cur1")), 403, "403201", blocked)
		r := ts.call("POST", "/v4/accounts/cur1/password", tok, map[string]any{"currentPassword": pw("cur1"), "password": pw("new")})
		wantErr(t, r, 403, "403201", blocked)
	})

	t.Run("admin clears", func(t *testing.T) {
		ts := ts.as(t)
		ts.failLogins("del1", 2)
		ts.failLogins("del1", 1, "X-Forwarded-For", "10.9.9.9") // untrusted: same key
		wantErr(t, ts.loginReply("del1", pw("del1")), 403, "403201", blocked)
		wantOK(t, ts.call("DELETE", "/v4/account-locks/del1", root, nil))
		if _, ok := ts.locks(root)["del1::127.0.0.1"]; ok {
			t.Fatal("lock kept after DELETE /v4/account-locks/del1")
		}
		ts.login("del1", pw("del1"))
		wantOK(t, ts.call("DELETE", "/v4/account-locks/nobody", root, nil))
	})

	t.Run("untrusted X-Forwarded-For", func(t *testing.T) {
		ts := ts.as(t)
		for i := range 3 {
			ts.failLogins("xff1", 1, "X-Forwarded-For", fmt.Sprintf("192.0.2.%d", i), "X-Real-IP", fmt.Sprintf("198.51.100.%d", i))
		}
		wantErr(t, ts.loginReply("xff1", pw("xff1"), "X-Forwarded-For", "192.0.2.200"), 403, "403201", blocked)
		if l := ts.locks(root)["xff1::127.0.0.1"]; l.Status != "banned" {
			t.Fatalf("xff1 not banned under the peer address: %+v", ts.locks(root))
		}
	})

	t.Run("window", func(t *testing.T) {
		ts := ts.as(t)
		ts.failLogins("win1", 2)
		clock.Advance(window + time.Second)
		ts.failLogins("win1", 2)
		ts.login("win1", pw("win1"))
	})
}

// Only failures count toward lockout: parallel correct logins from one
// address all succeed, and of as many parallel wrong ones exactly the
// configured attempts are answered 401, the rest 403. Not parallel to the
// other tests: its load would stretch their short lockout windows.
func TestEngineLockoutParallel(t *testing.T) {
	const attempts, n = 3, 30
	ts := start(t, func(c *server.Config) { c.LockoutAttempts = attempts })
	ts.mkAccount(ts.root(), "race1", pw("race1"), "developer")
	answers := func(password string) map[int]int {
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { statuses[i] = ts.loginReply("race1", password).status })
		}
		wg.Wait()
		count := map[int]int{}
		for _, s := range statuses {
			count[s]++
		}
		return count
	}
	if got := answers(pw("race1")); got[200] != n {
		t.Fatalf("%d parallel correct logins answered %v", n, got)
	}
	if got := answers("Wr0ng-Password!"); got[401] != attempts || got[403] != n-attempts {
		t.Fatalf("%d parallel wrong logins answered %v, want %d × 401 and the rest 403", n, got, attempts)
	}
	wantErr(t, ts.loginReply("race1", pw("race1")), 403, "403201", blocked)
}

func TestEngineLockoutTrustedProxy(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *server.Config) { c.TrustedProxies = []string{"127.0.0.1", "10.0.0.0/8"} })
	root := ts.root()
	ts.mkAccount(root, "prox1", pw("p1"), "developer")

	ts.failLogins("prox1", 3, "X-Forwarded-For", "203.0.113.1")
	wantErr(t, ts.loginReply("prox1", pw("p1"), "X-Forwarded-For", "203.0.113.1"), 403, "403201", blocked)
	// Another client behind the proxy is a different key; a chain of
	// trusted proxies resolves to the first untrusted hop from the right.
	ts.login("prox1", pw("p1"))
	wantStatus(t, ts.loginReply("prox1", pw("p1"), "X-Forwarded-For", "203.0.113.2"), 200)
	wantErr(t, ts.loginReply("prox1", pw("p1"), "X-Forwarded-For", "203.0.113.1, 10.1.2.3"), 403, "403201", blocked)
	wantStatus(t, ts.loginReply("prox1", pw("p1"), "X-Forwarded-For", "203.0.113.1, 203.0.113.2, 10.1.2.3"), 200)
	wantErr(t, ts.loginReply("prox1", pw("p1"), "X-Real-IP", "203.0.113.1"), 403, "403201", blocked)

	locks := ts.locks(root)
	if l := locks["prox1::203.0.113.1"]; l.Status != "banned" || len(locks) != 1 {
		t.Fatalf("locks %+v, want only prox1::203.0.113.1 banned", locks)
	}
}
