package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestReplicas checks every rule that spans replicas on three replicas of
// one etcd cluster: a change acknowledged by one replica holds on the
// others within the propagation bound.
func TestReplicas(t *testing.T) {
	f := startFleet(t, 3, "--ccmessaging-token-ttl", "2s", "--trusted-proxies", "127.0.0.1")
	root := f.reps[0].login(t, "root", rootPassword)
	t.Run("KeyRing", func(t *testing.T) { testKeyRing(t, f, root) })
	t.Run("Lockout", func(t *testing.T) { testLockout(t, f, root) })
	t.Run("Revocation", func(t *testing.T) { testRevocation(t, f, root) })
	t.Run("Apps", func(t *testing.T) { testApps(t, f, root) })
	t.Run("Sessions", func(t *testing.T) { testSessions(t, f, root) })
	t.Run("Propagation", func(t *testing.T) { testPropagation(t, f, root) })
	t.Run("RecordSizes", func(t *testing.T) { testRecordSizes(t, f) })
}

// testKeyRing: replicas sign with one shared active key; a rotation on A
// makes B sign with the new key while every replica still verifies tokens
// of the old one and publishes both.
func testKeyRing(t *testing.T, f *fleet, root string) {
	a, b := f.reps[0], f.reps[1]
	oldKid := jwtHeader(t, root)["kid"]
	for _, rp := range f.reps {
		if kid := jwtHeader(t, rp.login(t, "root", rootPassword))["kid"]; kid != oldKid {
			t.Fatalf("replica %s signs with key %s, replica A with %s", rp.name, kid, oldKid)
		}
		if r := rp.call(t, "GET", "/v4/self-perms", nil, bearer(root)...); r.Status != http.StatusOK {
			t.Fatalf("replica %s refuses a token signed on A: %s", rp.name, r)
		}
	}

	newKid := a.must(t, "POST", "/v4/keys/rotate", map[string]bool{"immediate": true}, bearer(root)...).field("id")
	if newKid == "" || newKid == oldKid {
		t.Fatalf("rotation made key %q, the old key is %q", newKid, oldKid)
	}
	within(t, propagationBound, "B's active key after rotation on A", func() error {
		if kid := activeKey(t, b, root); kid != newKid {
			return fmt.Errorf("B's active key is %s, want %s", kid, newKid)
		}
		return nil
	})
	fresh := b.login(t, "root", rootPassword)
	if kid := jwtHeader(t, fresh)["kid"]; kid != newKid {
		t.Fatalf("B signs with %s after the rotation, want %s", kid, newKid)
	}
	for _, rp := range f.reps {
		for _, tok := range []string{root, fresh} {
			if r := rp.call(t, "GET", "/v4/self-perms", nil, bearer(tok)...); r.Status != http.StatusOK {
				t.Fatalf("replica %s, token of key %s: %s", rp.name, jwtHeader(t, tok)["kid"], r)
			}
		}
		var set struct{ Keys []struct{ Kid string } }
		if err := json.Unmarshal(rp.must(t, "GET", "/.well-known/jwks.json", nil).Body, &set); err != nil {
			t.Fatal(err)
		}
		var kids []string
		for _, k := range set.Keys {
			kids = append(kids, k.Kid)
		}
		if !slices.Contains(kids, oldKid) || !slices.Contains(kids, newKid) {
			t.Fatalf("replica %s publishes keys %v, want %s and %s", rp.name, kids, oldKid, newKid)
		}
	}
}

// activeKey returns the id of the key rp lists as active.
func activeKey(t testing.TB, rp *replica, root string) string {
	t.Helper()
	var keys struct {
		Data []struct{ ID, Status string }
	}
	if err := json.Unmarshal(rp.must(t, "GET", "/v4/keys", nil, bearer(root)...).Body, &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys.Data {
		if k.Status == "active" {
			return k.ID
		}
	}
	return ""
}

// testLockout: failures counted on different replicas add up, and a ban
// holds on every replica.
func testLockout(t *testing.T, f *fleet, root string) {
	a, b, c := f.reps[0], f.reps[1], f.reps[2]
	const pw = "Lock-Me-0ut!"
	a.createAccount(t, root, "locked", pw)
	waitAccount(t, f, root, "locked")

	wrong, right := credentials{"locked", "Wrong-Passw0rd!"}, credentials{"locked", pw}
	for _, rp := range f.reps {
		if err := rp.call(t, "POST", "/v4/token", wrong).is(http.StatusUnauthorized, "401202"); err != nil {
			t.Fatalf("failed login on %s: %v", rp.name, err)
		}
	}
	for _, rp := range f.reps {
		if err := rp.call(t, "POST", "/v4/token", right).is(http.StatusForbidden, "403201"); err != nil {
			t.Fatalf("login on %s after three failures on A, B, C: %v", rp.name, err)
		}
	}
	var locks struct {
		Data []struct{ Key, Status string }
	}
	if err := json.Unmarshal(c.must(t, "GET", "/v4/account-locks", nil, bearer(root)...).Body, &locks); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(locks.Data, struct{ Key, Status string }{"locked::127.0.0.1", "banned"}) {
		t.Fatalf("locks on C: %+v", locks.Data)
	}
	b.must(t, "DELETE", "/v4/account-locks/locked", nil, bearer(root)...)
	c.login(t, "locked", pw)

	// Behind a load balancer that is a trusted proxy, the key is the
	// client's address from X-Forwarded-For: a ban of one client leaves
	// the others alone.
	for _, rp := range f.reps {
		if err := rp.call(t, "POST", "/v4/token", wrong, "X-Forwarded-For", "203.0.113.7").is(http.StatusUnauthorized, "401202"); err != nil {
			t.Fatalf("failed login through the proxy on %s: %v", rp.name, err)
		}
	}
	for _, rp := range f.reps {
		if err := rp.call(t, "POST", "/v4/token", right, "X-Forwarded-For", "203.0.113.7").is(http.StatusForbidden, "403201"); err != nil {
			t.Fatalf("banned client through the proxy on %s: %v", rp.name, err)
		}
	}
	a.must(t, "POST", "/v4/token", right, "X-Forwarded-For", "198.51.100.9")
	c.must(t, "POST", "/v4/token", right)

	// Guesses racing on three replicas get exactly the allowed number of
	// tries between them.
	const perReplica = 3
	replies := make([]reply, perReplica*len(f.reps))
	errs := make([]error, len(replies))
	var wg sync.WaitGroup
	for i := range replies {
		rp := f.reps[i%len(f.reps)]
		wg.Go(func() { replies[i], errs[i] = rp.send("POST", "/v4/token", credentials{"racer", "Wrong-Passw0rd!"}) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, r := range replies {
		count[fmt.Sprintf("%d %s", r.Status, r.field("errorCode"))]++
	}
	want := map[string]int{"401 401202": 3, "403 403201": len(replies) - 3}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Fatalf("%d concurrent guesses over %d replicas answered %v, want %v", len(replies), len(f.reps), count, want)
	}
}

// waitAccount waits until every replica knows the account name.
func waitAccount(t testing.TB, f *fleet, root, name string) {
	t.Helper()
	var checks []func() error
	for _, rp := range f.reps {
		checks = append(checks, expect(rp, http.StatusOK, "", "GET", "/v4/accounts/"+name, nil, bearer(root)...))
	}
	within(t, propagationBound, "account "+name+" on every replica", allOf(checks...))
}

// allOf is a check that passes once every check passes.
func allOf(checks ...func() error) func() error {
	return func() error {
		for _, c := range checks {
			if err := c(); err != nil {
				return err
			}
		}
		return nil
	}
}

// refused is a check that every replica refuses token as revoked.
func refused(f *fleet, token string) func() error {
	var checks []func() error
	for _, rp := range f.reps {
		checks = append(checks, expect(rp, http.StatusUnauthorized, "401201", "GET", "/v4/self-perms", nil, bearer(token)...))
	}
	return allOf(checks...)
}

// testRevocation: a logout, a password change and a deactivation made on
// A revoke tokens issued on other replicas, on every replica.
func testRevocation(t *testing.T, f *fleet, root string) {
	a, b, c := f.reps[0], f.reps[1], f.reps[2]
	const pw, pw2 = "Alice-Passw0rd!", "Alice-Passw0rd?2"
	a.createAccount(t, root, "alice", pw)
	a.createAccount(t, root, "bob", pw)
	waitAccount(t, f, root, "alice")
	waitAccount(t, f, root, "bob")

	t.Run("Logout", func(t *testing.T) {
		tok := c.login(t, "alice", pw)
		b.must(t, "GET", "/v4/self-perms", nil, bearer(tok)...)
		a.must(t, "DELETE", "/v4/token", nil, bearer(tok)...)
		within(t, propagationBound, "logout on A", refused(f, tok))
	})
	t.Run("PasswordChange", func(t *testing.T) {
		onB, onC := b.login(t, "alice", pw), c.login(t, "alice", pw)
		b.must(t, "GET", "/v4/self-perms", nil, bearer(onC)...)
		own := a.login(t, "alice", pw)
		a.must(t, "POST", "/v4/accounts/alice/password", map[string]string{"currentPassword": pw, "password": pw2}, bearer(own)...)
		within(t, propagationBound, "password change on A", allOf(refused(f, onB), refused(f, onC), refused(f, own)))
		// Having seen the change, B takes the new password only.
		fresh := b.login(t, "alice", pw2)
		c.must(t, "GET", "/v4/self-perms", nil, bearer(fresh)...)
		if err := c.call(t, "POST", "/v4/token", credentials{"alice", pw}).is(http.StatusUnauthorized, "401202"); err != nil {
			t.Fatalf("old password on C: %v", err)
		}
	})
	t.Run("AccountDeactivation", func(t *testing.T) {
		onB := b.login(t, "bob", pw)
		c.must(t, "GET", "/v4/self-perms", nil, bearer(onB)...)
		a.must(t, "PUT", "/v4/accounts/bob", map[string]any{"roles": []string{"developer"}, "status": "inactive"}, bearer(root)...)
		within(t, propagationBound, "deactivation on A", refused(f, onB))
		if err := c.call(t, "POST", "/v4/token", credentials{"bob", pw}).is(http.StatusForbidden, "403206"); err != nil {
			t.Fatalf("login of the deactivated account on C: %v", err)
		}
	})
	t.Run("AccountDeletion", func(t *testing.T) {
		onC := c.login(t, "alice", pw2)
		b.must(t, "GET", "/v4/self-perms", nil, bearer(onC)...)
		a.must(t, "DELETE", "/v4/accounts/alice", nil, bearer(root)...)
		var checks []func() error
		for _, rp := range f.reps {
			checks = append(checks, expect(rp, http.StatusUnauthorized, "401206", "GET", "/v4/self-perms", nil, bearer(onC)...))
		}
		within(t, propagationBound, "account deletion on A", allOf(checks...))
	})
}

// applies is a check that rp opens a session of user with access.
func applies(rp *replica, a app, access, channel, user string, status int) func() error {
	return func() error {
		r, err := rp.applyToken(a, access, channel, user)
		if err != nil {
			return err
		}
		if r.Status != status {
			return fmt.Errorf("applyToken on %s: got %s, want %d", rp.name, r, status)
		}
		return nil
	}
}

// verifies is a check that rp answers a protected ccmessaging request
// carrying token with status.
func verifies(rp *replica, a app, access, token string, status int) func() error {
	return func() error {
		r, err := rp.session(a, access, token)
		if err != nil {
			return err
		}
		if r.Status != status {
			return fmt.Errorf("session on %s: got %s, want %d", rp.name, r, status)
		}
		return nil
	}
}

// issues is a check that rp answers tokenByAkSk for key and secret with
// status and (unless empty) errorCode code.
func issues(rp *replica, key, secret string, status int, code string) func() error {
	return func() error {
		r, err := rp.tokenByAkSk(key, secret)
		if err != nil {
			return err
		}
		if err := r.is(status, code); err != nil {
			return fmt.Errorf("tokenByAkSk on %s: %w", rp.name, err)
		}
		return nil
	}
}

// testApps: an app deactivated or a secret rotated on A takes effect on
// every replica, and reactivating an app does not revive its sessions.
func testApps(t *testing.T, f *fleet, root string) {
	a, b, c := f.reps[0], f.reps[1], f.reps[2]
	t.Run("Deactivation", func(t *testing.T) {
		ap := a.createApp(t, root, "crm")
		ch := a.createChannel(t, root, ap.Key)
		access := b.accessToken(t, ap)
		var token string
		within(t, propagationBound, "channel on C", func() error {
			r, err := c.applyToken(ap, access, ch, "u1")
			if err != nil {
				return err
			}
			token = r.field("token")
			return r.is(http.StatusOK, "")
		})
		a.must(t, "PUT", "/v4/apps/"+ap.Key, map[string]string{"status": "inactive"}, bearer(root)...)
		within(t, propagationBound, "deactivation on A", allOf(
			applies(b, ap, access, ch, "u2", http.StatusUnauthorized),
			applies(c, ap, access, ch, "u2", http.StatusUnauthorized),
			issues(b, ap.Key, ap.Secret, http.StatusUnauthorized, "401501"),
			verifies(b, ap, access, token, http.StatusUnauthorized)))

		// Reactivated on A, the app gets AccessTokens again, but its old
		// session stays ended on every replica.
		a.must(t, "PUT", "/v4/apps/"+ap.Key, map[string]string{"status": "active"}, bearer(root)...)
		again := b.accessToken(t, ap)
		for _, rp := range []*replica{b, c} {
			within(t, propagationBound, "reactivation on "+rp.name, applies(rp, ap, again, ch, "u3", http.StatusOK))
			r, err := rp.session(ap, again, token)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != http.StatusUnauthorized || r.field("resultDesc") != "session ended: app deactivated" {
				t.Fatalf("session of the deactivated app on %s: %s", rp.name, r)
			}
		}
	})
	t.Run("Deletion", func(t *testing.T) {
		ap := a.createApp(t, root, "erp")
		ch := a.createChannel(t, root, ap.Key)
		access := c.accessToken(t, ap)
		within(t, propagationBound, "channel on B", applies(b, ap, access, ch, "u1", http.StatusOK))
		a.must(t, "DELETE", "/v4/apps/"+ap.Key, nil, bearer(root)...)
		within(t, propagationBound, "app deletion on A", allOf(
			applies(b, ap, access, ch, "u2", http.StatusUnauthorized),
			applies(c, ap, access, ch, "u2", http.StatusUnauthorized),
			issues(c, ap.Key, ap.Secret, http.StatusUnauthorized, "401501")))
	})
	t.Run("SecretRotation", func(t *testing.T) {
		ap := a.createApp(t, root, "billing")
		ch := a.createChannel(t, root, ap.Key)
		first := b.accessToken(t, ap)
		within(t, propagationBound, "channel on C", applies(c, ap, first, ch, "u1", http.StatusOK))

		// With a grace, the old secret and its AccessTokens keep working.
		second := a.must(t, "POST", "/v4/apps/"+ap.Key+"/secret", map[string]int{"graceSeconds": 300}, bearer(root)...).field("appSecret")
		within(t, propagationBound, "new secret on B", issues(b, ap.Key, second, http.StatusOK, ""))
		if err := allOf(issues(c, ap.Key, ap.Secret, http.StatusOK, ""), applies(c, ap, first, ch, "u1", http.StatusOK))(); err != nil {
			t.Fatalf("within the grace: %v", err)
		}
		during := b.accessToken(t, app{ap.Key, second})

		// Without one, the previous secret and its AccessTokens stop.
		third := a.must(t, "POST", "/v4/apps/"+ap.Key+"/secret", nil, bearer(root)...).field("appSecret")
		within(t, propagationBound, "rotation without grace on A", allOf(
			issues(b, ap.Key, second, http.StatusUnauthorized, "401501"),
			issues(c, ap.Key, ap.Secret, http.StatusUnauthorized, "401501"),
			applies(b, ap, during, ch, "u1", http.StatusUnauthorized),
			applies(c, ap, first, ch, "u1", http.StatusUnauthorized),
			issues(b, ap.Key, third, http.StatusOK, "")))
		within(t, propagationBound, "newest secret on C", applies(c, ap, c.accessToken(t, app{ap.Key, third}), ch, "u1", http.StatusOK))
	})
}

// ccmSession is the body of GET /apiaccess/ccmessaging/session.
type ccmSession struct {
	ResultCode string `json:"resultCode"`
	ExpiresAt  int64  `json:"expiresAt"`
}

// openSession calls the protected session endpoint on rp and fails the
// test unless it answers 200; it returns the body and the renewed token
// header ("" if none).
func openSession(t testing.TB, rp *replica, a app, access, token string) (ccmSession, string) {
	t.Helper()
	r, err := rp.session(a, access, token)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != http.StatusOK {
		t.Fatalf("session on %s: %s", rp.name, r)
	}
	var s ccmSession
	if err := json.Unmarshal(r.Body, &s); err != nil {
		t.Fatal(err)
	}
	return s, r.Header.Get("ccmessaging-token")
}

// sleepUntilExpired waits until a token with exp (unix seconds) has
// expired.
func sleepUntilExpired(exp int64) {
	time.Sleep(time.Until(time.Unix(exp, 0)) + 50*time.Millisecond)
}

// testSessions: ccmessaging sessions opened, renewed and superseded on one
// replica hold on the others (token lifetime 2 s).
func testSessions(t *testing.T, f *fleet, root string) {
	a, b, c := f.reps[0], f.reps[1], f.reps[2]
	ap := a.createApp(t, root, "chat")
	ch := a.createChannel(t, root, ap.Key)
	access := a.accessToken(t, ap)
	for _, rp := range f.reps {
		within(t, propagationBound, "app and channel on "+rp.name, applies(rp, ap, access, ch, "warmup", http.StatusOK))
	}
	apply := func(rp *replica) string {
		t.Helper()
		r, err := rp.applyToken(ap, access, ch, "10001")
		if err != nil || r.Status != http.StatusOK {
			t.Fatalf("applyToken on %s: %v %v", rp.name, r, err)
		}
		return r.field("token")
	}

	// A session opened on A works on B at once.
	t1 := apply(a)
	s, _ := openSession(t, b, ap, access, t1)

	// Expired, it renews on B; the new token works on A, and the old one,
	// within its grace, answers the new one on C.
	sleepUntilExpired(s.ExpiresAt)
	_, t2 := openSession(t, b, ap, access, t1)
	if t2 == "" || t2 == t1 {
		t.Fatalf("no renewal on B of an expired token: header %q", t2)
	}
	if _, cur := openSession(t, c, ap, access, t1); cur != t2 {
		t.Fatalf("superseded token on C answered %q, want the renewed token", cur)
	}
	openSession(t, a, ap, access, t2)

	// applyToken on B supersedes every earlier token of the session.
	t3 := apply(b)
	if err := verifies(b, ap, access, t2, http.StatusUnauthorized)(); err != nil {
		t.Fatalf("at once on the replica that served applyToken: %v", err)
	}
	var dead []func() error
	for _, rp := range []*replica{a, c} {
		for _, tok := range []string{t1, t2} {
			dead = append(dead, verifies(rp, ap, access, tok, http.StatusUnauthorized))
		}
	}
	within(t, propagationBound, "applyToken on B", allOf(dead...))
	s, _ = openSession(t, a, ap, access, t3)
	openSession(t, c, ap, access, t3)

	// The same expired token on three replicas at once renews once: every
	// replica answers the same new token.
	sleepUntilExpired(s.ExpiresAt)
	renewed := make([]string, len(f.reps))
	errs := make([]error, len(f.reps))
	var wg sync.WaitGroup
	for i, rp := range f.reps {
		wg.Go(func() {
			r, err := rp.session(ap, access, t3)
			if err == nil && r.Status != http.StatusOK {
				err = fmt.Errorf("renewal race on %s: %s", rp.name, r)
			}
			renewed[i], errs[i] = r.Header.Get("ccmessaging-token"), err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if renewed[0] == "" || renewed[0] == t3 || renewed[1] != renewed[0] || renewed[2] != renewed[0] {
		t.Fatalf("concurrent renewals on A, B, C answered different tokens: %q", renewed)
	}

	// A session ended by an administrator on A ends everywhere.
	a.must(t, "DELETE", "/v4/ccmessaging-sessions/"+ch+"/10001", nil, bearer(root)...)
	within(t, propagationBound, "session ended on A", allOf(
		verifies(b, ap, access, renewed[0], http.StatusUnauthorized),
		verifies(c, ap, access, renewed[0], http.StatusUnauthorized)))
}
