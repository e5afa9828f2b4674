package engine

import (
	"errors"
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
	key := LockKey("alice", ip)

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
	// An unknown name counts like a known one.
	for range 3 {
		e.fail(t, "ghost", ip, "401202")
	}
	e.fail(t, "ghost", ip, "403201")
	// A name no account can have is not counted.
	for range 4 {
		e.fail(t, "-not a name-", ip, "401202")
	}
	if _, ok := e.lockOf(t, LockKey("-not a name-", ip)); ok {
		t.Fatal("an invalid name was counted")
	}
	if err := e.ClearLocks(bg, admin, "ghost"); err != nil {
		t.Fatal(err)
	}
	e.fail(t, "ghost", ip, "401202")
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

func TestLockoutConcurrentGuesses(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	e.mkAccount(t, "carol", "Passw0rd!c")
	const guesses = 6
	errs := make([]error, guesses)
	var wg sync.WaitGroup
	for i := range guesses {
		wg.Go(func() {
			_, errs[i] = e.Login(bg, LoginRequest{Name: "carol", Password: "Wr0ng-Passw0rd!"}, "192.0.2.4")
		})
	}
	wg.Wait()
	checked := 0
	for _, err := range errs {
		if errors.Is(err, apierror.WrongCredentials) {
			checked++
		}
	}
	if checked != 3 {
		t.Fatalf("%d guesses checked, want exactly the threshold 3: %v", checked, errs)
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
	if LockKey("bob", "2001:db8::1") != LockKey("bob", "2001:db8::2") {
		t.Error("addresses of one /64 get different lock keys")
	}
}
