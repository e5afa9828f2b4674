package engine

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/testclock"
)

// lockOf returns the lock listed under key, if any.
func (e *testEngine) lockOf(tb testing.TB, key string) (Lock, bool) {
	tb.Helper()
	locks, err := e.Locks(bg)
	if err != nil {
		tb.Fatal(err)
	}
	for _, l := range locks {
		if l.Key == key {
			return l, true
		}
	}
	return Lock{}, false
}

// fail makes a failed login for name from ip and checks the answer.
func (e *testEngine) fail(tb testing.TB, name, ip, code string) {
	tb.Helper()
	_, err := e.Login(bg, LoginRequest{Name: name, Password: "Wr0ng-Passw0rd!"}, ip)
	wantCode(tb, err, code)
}

func TestLockoutCounting(t *testing.T) {
	t.Parallel()
	clk := testclock.New(time.Now())
	const window, ban = time.Minute, 5 * time.Minute
	e := newEngine(t, Options{Now: clk.Now, LockoutAttempts: 3, LockoutWindow: window, LockoutBan: ban})
	e.mkAccount(t, "alice", "Passw0rd!a")
	const ip = "192.0.2.1"
	key := "alice::" + ip

	// Failures outside the window do not add up.
	e.fail(t, "alice", ip, "401202")
	e.fail(t, "alice", ip, "401202")
	if l, ok := e.lockOf(t, key); !ok || l.Status != LockAttempted || l.ReleaseAt != clk.Now().Add(window).Unix() {
		t.Fatalf("lock after two failures: %+v", l)
	}
	clk.Advance(window + time.Second)
	e.fail(t, "alice", ip, "401202")
	e.fail(t, "alice", ip, "401202")
	if _, err := e.Login(bg, LoginRequest{Name: "alice", Password: "Passw0rd!a"}, ip); err != nil {
		t.Fatalf("two failures in the window: %v", err)
	}
	if _, ok := e.lockOf(t, key); ok {
		t.Fatal("a successful login left the failures")
	}

	// Three in the window ban the key, not the account from another IP.
	for range 3 {
		e.fail(t, "alice", ip, "401202")
	}
	bannedAt := clk.Now()
	_, err := e.Login(bg, LoginRequest{Name: "alice", Password: "Passw0rd!a"}, ip)
	wantCode(t, err, "403201")
	if l, _ := e.lockOf(t, key); l.Status != LockBanned || l.ReleaseAt != bannedAt.Add(ban).Unix() {
		t.Fatalf("lock during the ban: %+v", l)
	}
	e.login(t, "alice", "Passw0rd!a") // from 127.0.0.1
	clk.Advance(ban - time.Second)
	e.fail(t, "alice", ip, "403201")

	// A served ban starts a fresh count.
	clk.Advance(2 * time.Second)
	e.fail(t, "alice", ip, "401202")
	if l, _ := e.lockOf(t, key); l.Status != LockAttempted {
		t.Fatalf("lock after the ban: %+v", l)
	}
	e.fail(t, "alice", ip, "401202")
	if _, err := e.Login(bg, LoginRequest{Name: "alice", Password: "Passw0rd!a"}, ip); err != nil {
		t.Fatalf("after the ban: %v", err)
	}
}

func TestLockoutNames(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	const ip = "192.0.2.2"
	// An unknown name counts like a known one, but it may be a password
	// typed into the name field: its key is listed masked and stored
	// hashed.
	for range 3 {
		e.fail(t, "ghost", ip, "401202")
	}
	e.fail(t, "ghost", ip, "403201")
	// A name no account can have is not counted.
	for range 4 {
		e.fail(t, "-not a name-", ip, "401202")
	}
	locks, err := e.Locks(bg)
	if err != nil {
		t.Fatal(err)
	}
	masked := "***" + e.nameHash("ghost")[:8] + "::" + ip
	if len(locks) != 1 || locks[0].Key != masked || locks[0].Status != LockBanned {
		t.Fatalf("locks %+v, want only %s banned", locks, masked)
	}
	items, _, err := e.st.List(bg, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if strings.Contains(it.Key, "ghost") || strings.Contains(string(it.Value), "ghost") {
			t.Fatalf("the store holds the unknown name in clear: %s", it.Key)
		}
	}
	// An admin clears it by typing the name.
	if err := e.ClearLocks(bg, admin, "ghost"); err != nil {
		t.Fatal(err)
	}
	e.fail(t, "ghost", ip, "401202")
	// Once the name is an account, its key is listed by name.
	e.mkAccount(t, "ghost", "Passw0rd!g")
	if _, ok := e.lockOf(t, "ghost::"+ip); !ok {
		t.Fatal("the key of a new account is not listed by name")
	}
}

func TestLockoutPasswordChange(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	e.mkAccount(t, "bob", "Passw0rd!b")
	bob := authz.Caller{Account: "bob", Roles: []string{DeveloperRole}, IP: "192.0.2.3"}
	change := func(current string) error {
		return e.ChangePassword(bg, bob, "bob", ChangePasswordRequest{CurrentPassword: current, Password: "Passw0rd!new"})
	}
	for range 2 {
		wantCode(t, change("Wr0ng!pass1"), "401207")
	}
	// A verified current password clears the count, as a login does.
	if err := change("Passw0rd!b"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		wantCode(t, change("Wr0ng!pass1"), "401207")
	}
	if _, err := e.Login(bg, LoginRequest{Name: "bob", Password: "Passw0rd!new"}, bob.IP); err != nil {
		t.Fatalf("login after 2+2 failures around a verified password: %v", err)
	}
	// The third wrong current password in a row bans the key.
	for range 3 {
		wantCode(t, change("Wr0ng!pass1"), "401207")
	}
	wantCode(t, change("Passw0rd!new"), "403201")
	_, err := e.Login(bg, LoginRequest{Name: "bob", Password: "Passw0rd!new"}, bob.IP)
	wantCode(t, err, "403201")
}

// Only failures count toward lockout, on every backend: correct logins
// from one address all succeed however many arrive at once, and of as
// many wrong ones at once exactly the configured attempts are answered
// as wrong, the rest as blocked.
func TestLockoutParallelLogins(t *testing.T) {
	t.Parallel()
	for backend, open := range map[string]func(testing.TB, Options) *testEngine{"bolt": newEngine, "etcd": newEtcdEngine} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			const attempts, n, ip = 4, 30, "192.0.2.4"
			e := open(t, Options{LockoutAttempts: attempts})
			e.mkAccount(t, "carol", "Passw0rd!c")
			answers := func(pw string) map[string]int {
				errs := make([]error, n)
				var wg sync.WaitGroup
				for i := range n {
					wg.Go(func() {
						_, errs[i] = e.Login(bg, LoginRequest{Name: "carol", Password: pw}, ip)
					})
				}
				wg.Wait()
				codes := map[string]int{}
				for _, err := range errs {
					if err == nil {
						codes["ok"]++
					} else if ae, ok := apierror.As(err); ok {
						codes[ae.Code]++
					} else {
						t.Fatal(err)
					}
				}
				return codes
			}
			if got := answers("Passw0rd!c"); got["ok"] != n {
				t.Fatalf("%d parallel correct logins: %v", n, got)
			}
			if got := answers("Wr0ng-Passw0rd!"); got["401202"] != attempts || got["403201"] != n-attempts {
				t.Fatalf("%d parallel wrong logins: %v, want %d 401202 and the rest 403201", n, got, attempts)
			}
		})
	}
}

func TestClientKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":            "192.0.2.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::/64",
		"::ffff:192.0.2.7":     "::ffff:192.0.2.7",
		"not-an-ip":            "not-an-ip",
		"fe80::1%eth0":         "fe80::/64",
	} {
		if got := authz.ClientKey(in); got != want {
			t.Errorf("ClientKey(%q) = %q, want %q", in, got, want)
		}
	}
	e := newEngine(t, Options{})
	if e.lockKey("bob", "2001:db8::1") != e.lockKey("bob", "2001:db8::2") {
		t.Error("addresses of one /64 get different lock keys")
	}
}
