package engine

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/store/etcd"
	"github.com/gatehouse/gatehouse/internal/store/etcd/etcdtest"
)

// propagationBound is how soon a change acknowledged by one replica must
// take effect on every other one (SPEC §4.1).
const propagationBound = time.Second

// clientIPs hands out a fresh client address per login, so that the
// failed logins of these tests never add up to a lockout.
var clientIPs atomic.Uint32

func nextIP() string {
	n := clientIPs.Add(1)
	return fmt.Sprintf("10.%d.%d.%d", n>>16&0xff, n>>8&0xff, n&0xff)
}

// newReplicas starts n engines on one etcd cluster, as n replicas on
// hosts whose clocks are skew[i] ahead of the true time.
func newReplicas(t *testing.T, skew ...time.Duration) []*testEngine {
	t.Helper()
	c := etcdtest.Start(t, t.TempDir(), 1)
	reps := make([]*testEngine, len(skew))
	for i, d := range skew {
		st, err := etcd.Open(t.Context(), etcd.Config{Endpoints: c.Endpoints(), Prefix: "/gatehouse/",
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		reps[i] = startEngine(t, st, Options{Now: func() time.Time { return time.Now().Add(d) }})
	}
	return reps
}

// revocationCase is a change of an account that must revoke every token
// whose login checked the password against the record before it.
type revocationCase struct {
	name string
	// password is the account's password before change i.
	password func(i int) string
	// change makes change i of account name through e.
	change func(e *testEngine, name string, i int) error
	// checkedBefore reports whether tok, issued by a login that ran
	// alongside change i, was checked against the record before it.
	checkedBefore func(t *testing.T, tok string, i int) bool
	// restore, if set, lets the account log in again after change i.
	restore func(e *testEngine, name string) error
}

func numbered(i int) string { return fmt.Sprintf("Passw0rd!%d", i) }

// rolesAt are the account's roles before change i of the role case.
func rolesAt(i int) []string { return [][]string{{DeveloperRole}, {AdminRole}}[i%2] }

func revocationCases() []revocationCase {
	always := func(*testing.T, string, int) bool { return true }
	fixed := func(int) string { return numbered(0) }
	setStatus := func(e *testEngine, name, status string) error {
		a, err := e.GetAccount(name)
		if err != nil {
			return err
		}
		return e.UpdateAccount(bg, admin, name, UpdateAccountRequest{Roles: a.Roles, Status: status})
	}
	return []revocationCase{{
		name:     "password reset by an admin",
		password: numbered,
		change: func(e *testEngine, name string, i int) error {
			return e.ChangePassword(bg, admin, name, ChangePasswordRequest{Password: numbered(i + 1)})
		},
		checkedBefore: always, // the old password passed
	}, {
		name:     "own password change",
		password: numbered,
		change: func(e *testEngine, name string, i int) error {
			self := authz.Caller{Account: name, Roles: []string{DeveloperRole}, IP: nextIP()}
			return e.ChangePassword(bg, self, name, ChangePasswordRequest{CurrentPassword: numbered(i), Password: numbered(i + 1)})
		},
		checkedBefore: always,
	}, {
		name:     "role change",
		password: fixed,
		change: func(e *testEngine, name string, i int) error {
			return e.UpdateAccount(bg, admin, name, UpdateAccountRequest{Roles: rolesAt(i + 1)})
		},
		checkedBefore: func(t *testing.T, tok string, i int) bool {
			return slices.Equal(parseUnverified(t, tok).Roles, rolesAt(i))
		},
	}, {
		name:     "deactivation",
		password: fixed,
		change: func(e *testEngine, name string, _ int) error {
			return setStatus(e, name, StatusInactive)
		},
		checkedBefore: always, // an inactive account gets no token
		restore: func(e *testEngine, name string) error {
			return setStatus(e, name, StatusActive)
		},
	}}
}

// loginsAlongside runs logins of name with pw on e, two at a time, from
// before change() starts until it returns, and returns change's error and
// the tokens issued.
func loginsAlongside(e *testEngine, name, pw string, change func() error) ([]string, error) {
	done := make(chan struct{})
	var (
		mu     sync.Mutex
		tokens []string
		wg     sync.WaitGroup
	)
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if tok, err := e.Login(bg, LoginRequest{Name: name, Password: pw}, nextIP()); err == nil {
					mu.Lock()
					tokens = append(tokens, tok)
					mu.Unlock()
				}
			}
		})
	}
	err := change()
	close(done)
	wg.Wait()
	return tokens, err
}

// wantRevoked checks that e refuses tok as revoked.
func wantRevoked(t *testing.T, e *testEngine, tok string) {
	t.Helper()
	_, err := e.Verify("Bearer " + tok)
	if ae, ok := apierror.As(err); !ok || ae.Code != "401201" || ae.Detail != "token revoked" {
		t.Fatalf("want 401201 token revoked, got %v", err)
	}
}

// wantRevokedWithin checks that e refuses tok as revoked within
// propagationBound.
func wantRevokedWithin(t *testing.T, e *testEngine, tok string) {
	t.Helper()
	deadline := time.Now().Add(propagationBound)
	for {
		_, err := e.Verify("Bearer " + tok)
		if ae, ok := apierror.As(err); ok && ae.Code == "401201" && ae.Detail == "token revoked" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("token checked before a change on another replica: not revoked within %v: %v", propagationBound, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// testRevocationRaces makes each change many times on changer while
// logins run on loginer, and checks that every token whose password check
// saw the record before a change is refused once the change is
// acknowledged: at once by changer, within propagationBound by the other
// replicas. Tokens checked after it, and a login after it, stay valid.
func testRevocationRaces(t *testing.T, reps []*testEngine, loginer, changer *testEngine, rounds int) {
	for n, tc := range revocationCases() {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("racer%d", n)
			if err := changer.CreateAccount(bg, admin, CreateAccountRequest{Name: name, Password: numbered(0), Roles: rolesAt(0)}); err != nil {
				t.Fatal(err)
			}
			stale := 0
			for i := range rounds {
				waitSeen(t, loginer, changer, name)
				tokens, err := loginsAlongside(loginer, name, tc.password(i), func() error { return tc.change(changer, name, i) })
				if err != nil {
					t.Fatalf("change %d: %v", i, err)
				}
				var before, after []string
				for _, tok := range tokens {
					if tc.checkedBefore(t, tok, i) {
						before = append(before, tok)
					} else {
						after = append(after, tok)
					}
				}
				for _, tok := range before {
					wantRevoked(t, changer, tok)
				}
				for _, e := range reps {
					for _, tok := range before {
						wantRevokedWithin(t, e, tok)
					}
				}
				stale += len(before)
				if tc.restore != nil {
					if err := tc.restore(changer, name); err != nil {
						t.Fatal(err)
					}
					for _, tok := range before {
						wantRevoked(t, changer, tok)
					}
				}
				fresh := changer.login(t, name, tc.password(i+1))
				for _, e := range reps {
					for _, tok := range append(after, fresh) {
						if _, err := e.Verify("Bearer " + tok); err != nil {
							t.Fatalf("token checked after change %d: %v", i, err)
						}
					}
				}
			}
			t.Logf("%d rounds, %d tokens checked before a change", rounds, stale)
		})
	}
}

// waitSeen waits until e's view holds account name as src's does: a
// replica learns of another's change within propagationBound.
func waitSeen(t *testing.T, e, src *testEngine, name string) {
	t.Helper()
	want, ok := src.accounts.Get(name)
	if !ok {
		t.Fatalf("%s is not in the view of the replica that changed it", name)
	}
	deadline := time.Now().Add(propagationBound)
	for {
		got, ok := e.accounts.Get(name)
		if ok && got.ID == want.ID && got.RevokedBefore == want.RevokedBefore && got.PasswordHash == want.PasswordHash {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("another replica's change of %s not seen within %v", name, propagationBound)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Issue #11: a login whose password check passed against the record
// before a password change, role change or deactivation must not yield a
// token that outlives the change, however the login and the change
// interleave.
func TestChangeRevokesConcurrentLogins(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	testRevocationRaces(t, []*testEngine{e}, e, e, 3)
}

// The same across replicas on etcd: logins on one replica, changes on
// another whose clock is behind, so a stamp of time cannot order them.
func TestChangeRevokesConcurrentLoginsAcrossReplicas(t *testing.T) {
	t.Parallel()
	reps := newReplicas(t, 0, -3*time.Second)
	testRevocationRaces(t, reps, reps[0], reps[1], 2)
}

// A token is revoked by a change made after its login on a replica whose
// clock is behind the login's, and by the deletion of its account even
// once an account of the same name exists again.
func TestRevocationAcrossSkewedClocks(t *testing.T) {
	t.Parallel()
	reps := newReplicas(t, 3*time.Second, 0)
	fast, slow := reps[0], reps[1]
	slow.mkAccount(t, "skewed", numbered(0))
	waitSeen(t, fast, slow, "skewed")

	tok := fast.login(t, "skewed", numbered(0))
	if err := slow.ChangePassword(bg, admin, "skewed", ChangePasswordRequest{Password: numbered(1)}); err != nil {
		t.Fatal(err)
	}
	wantRevoked(t, slow, tok)
	wantRevokedWithin(t, fast, tok)

	waitSeen(t, fast, slow, "skewed")
	tok = fast.login(t, "skewed", numbered(1))
	if err := slow.DeleteAccount(bg, admin, "skewed"); err != nil {
		t.Fatal(err)
	}
	_, err := slow.Verify("Bearer " + tok)
	wantCode(t, err, "401206")
	slow.mkAccount(t, "skewed", numbered(1))
	wantRevoked(t, slow, tok)
	wantRevokedWithin(t, fast, tok)
}

// A root account bootstrapped again, after its record was removed from
// the store behind Gatehouse's back, revokes the tokens of the earlier
// one, those without a credential version (Service Center's) included.
func TestRebootstrappedRootRevokesOldTokens(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	withCred := e.login(t, RootAccount, rootPW)
	now := time.Now()
	legacy, err := e.ring.Sign(&Claims{Account: RootAccount, Roles: []string{AdminRole}, RegisteredClaims: jwt.RegisteredClaims{
		ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), IssuedAt: jwt.NewNumericDate(now), ID: tokenID(now.UnixMilli())}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.Delete(bg, accountPrefix+RootAccount); err != nil {
		t.Fatal(err)
	}
	again := startEngine(t, e.st, Options{RootPassword: "Other-Passw0rd!"})
	for _, tok := range []string{withCred, legacy} {
		wantRevoked(t, again, tok)
	}
	again.login(t, RootAccount, "Other-Passw0rd!")
}
