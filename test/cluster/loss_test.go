package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Bounds of the loss scenarios.
const (
	// maxUnavailable bounds the 503 answers the clients of TestMemberLoss
	// may see, all together: requests in flight when the member stopped.
	maxUnavailable = 10
	// attempts is how often a load client sends a request answered 503.
	attempts = 5
	// writeBound is how soon a write answers 503 once etcd is gone: the
	// store's request timeout (5 s) and a margin for a loaded machine.
	writeBound = 15 * time.Second
	// maxRounds bounds each load client's loop.
	maxRounds = 2000
)

// TestMemberLoss stops the etcd leader while two clients work against
// three replicas, each round creating an account, signing it in, opening
// a ccmessaging session and using it on another replica. Only requests
// in flight at that moment may fail, with 503 (they are retried), and
// every account whose creation was acknowledged is there afterwards on
// every replica.
func TestMemberLoss(t *testing.T) {
	f := startFleet(t, 3)
	root := f.reps[0].login(t, "root", rootPassword)
	env := sessionEnv(t, f, root)

	ctx, cancel := context.WithTimeout(context.Background(), 2*patience)
	defer cancel()
	clients := []*loadClient{{env: env, prefix: "one"}, {env: env, prefix: "two"}}
	var wg sync.WaitGroup
	for _, lc := range clients {
		wg.Go(func() { lc.run(ctx) })
	}
	stopClients := func() {
		cancel()
		wg.Wait()
	}
	defer stopClients()

	waitRounds(t, clients, 5, 0)
	leader := f.etcd.Leader()
	if leader < 0 {
		t.Fatal("the etcd cluster has no leader")
	}
	before := rounds(clients)
	f.etcd.Stop(leader)
	lost := time.Now()
	waitRounds(t, clients, before+20, 3*time.Second-time.Since(lost))
	stopClients()

	var created, unavailable []string
	for _, lc := range clients {
		created = append(created, lc.created...)
		unavailable = append(unavailable, lc.unavailable...)
		if lc.err != nil {
			t.Errorf("client %s: %v", lc.prefix, lc.err)
		}
	}
	t.Logf("member %d (the leader) stopped after %d rounds; %d rounds in all, %d accounts created; %d answers 503, retried:\n%s",
		leader, before, rounds(clients), len(created), len(unavailable), strings.Join(unavailable, "\n"))
	if len(unavailable) > maxUnavailable {
		t.Errorf("%d answers 503, more than the %d allowed for requests in flight", len(unavailable), maxUnavailable)
	}
	for _, rp := range f.reps {
		within(t, propagationBound, "acknowledged accounts on "+rp.name, func() error {
			return hasAccounts(rp, root, created)
		})
	}
	for _, rp := range f.reps {
		within(t, patience, "replica "+rp.name+" ready", expect(rp, http.StatusOK, "", "GET", "/readyz", nil))
	}
}

// sessionEnvironment is an app, its AccessToken and a channel open to
// it, known to every replica.
type sessionEnvironment struct {
	f       *fleet
	root    string
	app     app
	access  string
	channel string
}

// sessionEnv creates a sessionEnvironment through the first replica.
func sessionEnv(t *testing.T, f *fleet, root string) *sessionEnvironment {
	t.Helper()
	a := f.reps[0]
	e := &sessionEnvironment{f: f, root: root, app: a.createApp(t, root, "load")}
	e.channel = a.createChannel(t, root, e.app.Key)
	e.access = a.accessToken(t, e.app)
	for _, rp := range f.reps {
		within(t, propagationBound, "app and channel on "+rp.name, applies(rp, e.app, e.access, e.channel, "warmup", http.StatusOK))
	}
	return e
}

// loadClient works against every replica in rounds. A request answered
// 503 is sent again (the cluster may have applied it); any other answer
// than the expected one stops the client with err.
type loadClient struct {
	env      *sessionEnvironment
	prefix   string
	done     atomic.Int64 // rounds completed
	finished atomic.Bool  // run returned

	// Read once run returned.
	created     []string // accounts whose creation was acknowledged
	unavailable []string // the requests answered 503
	err         error
}

func (lc *loadClient) run(ctx context.Context) {
	defer lc.finished.Store(true)
	for i := 0; i < maxRounds && ctx.Err() == nil; i++ {
		if lc.err = lc.round(i); lc.err != nil {
			return
		}
		lc.done.Add(1)
	}
}

// round creates an account on one replica and signs it in there, opens a
// session on the next replica and uses it on the third.
func (lc *loadClient) round(i int) error {
	reps := lc.env.f.reps
	x, y, z := reps[i%len(reps)], reps[(i+1)%len(reps)], reps[(i+2)%len(reps)]
	name := fmt.Sprintf("%s%04d", lc.prefix, i)
	const pw = "Load-Passw0rd!"
	account := map[string]any{"name": name, "password": pw, "roles": []string{"developer"}}
	if _, err := lc.send(x, "create "+name, func() (reply, error) {
		return x.send("POST", "/v4/accounts", account, bearer(lc.env.root)...)
	}, func(r reply, retried bool) bool {
		// A creation answered 503 may have been applied.
		return r.Status == http.StatusOK || retried && r.is(http.StatusConflict, "409200") == nil
	}); err != nil {
		return err
	}
	lc.created = append(lc.created, name)
	if _, err := lc.send(x, "login "+name, func() (reply, error) {
		return x.send("POST", "/v4/token", credentials{name, pw})
	}, ok); err != nil {
		return err
	}
	e := lc.env
	r, err := lc.send(y, "applyToken "+name, func() (reply, error) {
		return y.applyToken(e.app, e.access, e.channel, name)
	}, ok)
	if err != nil {
		return err
	}
	token := r.field("token")
	_, err = lc.send(z, "session "+name, func() (reply, error) {
		return z.session(e.app, e.access, token)
	}, ok)
	return err
}

// ok accepts a 200 answer.
func ok(r reply, _ bool) bool { return r.Status == http.StatusOK }

// send makes a request with do until it is answered other than 503 (at
// most attempts times), and checks the answer with accept.
func (lc *loadClient) send(rp *replica, op string, do func() (reply, error), accept func(r reply, retried bool) bool) (reply, error) {
	for attempt := 1; ; attempt++ {
		sent := time.Now()
		r, err := do()
		if err != nil {
			return r, err
		}
		if r.Status == http.StatusServiceUnavailable && attempt < attempts {
			lc.unavailable = append(lc.unavailable, fmt.Sprintf("  %s on %s at %s after %v: %s",
				op, rp.name, sent.Format("15:04:05.000"), time.Since(sent).Round(time.Millisecond), r))
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if !accept(r, attempt > 1) {
			return r, fmt.Errorf("%s on %s: %s", op, rp.name, r)
		}
		return r, nil
	}
}

// rounds is the number of rounds the clients completed.
func rounds(clients []*loadClient) int {
	n := 0
	for _, lc := range clients {
		n += int(lc.done.Load())
	}
	return n
}

// waitRounds waits until the clients completed n rounds together and at
// least atLeast has passed, failing the test if a client stopped or that
// takes longer than patience.
func waitRounds(t *testing.T, clients []*loadClient, n int, atLeast time.Duration) {
	t.Helper()
	start := time.Now()
	within(t, patience, fmt.Sprintf("%d rounds of the clients", n), func() error {
		for _, lc := range clients {
			if lc.finished.Load() {
				t.Fatalf("client %s stopped: %v", lc.prefix, lc.err)
			}
		}
		if got := rounds(clients); got < n || time.Since(start) < atLeast {
			return fmt.Errorf("%d rounds after %v", got, time.Since(start).Round(time.Millisecond))
		}
		return nil
	})
}

// hasAccounts reports an error unless rp lists every account in names.
func hasAccounts(rp *replica, root string, names []string) error {
	r, err := rp.send("GET", "/v4/accounts", nil, bearer(root)...)
	if err != nil {
		return err
	}
	var list struct{ Data []struct{ Name string } }
	if err := json.Unmarshal(r.Body, &list); err != nil {
		return fmt.Errorf("accounts on %s: %s", rp.name, r)
	}
	have := map[string]bool{}
	for _, a := range list.Data {
		have[a.Name] = true
	}
	var missing []string
	for _, n := range names {
		if !have[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("replica %s lacks acknowledged accounts %v", rp.name, missing)
	}
	return nil
}

// TestTotalLoss takes etcd away from under two replicas with probing
// clients in two steps, first its quorum (one member of three left), then
// every member, and restarts the members on the same data. Without a
// quorum the replicas report not ready, keep verifying known engine and
// ccmessaging tokens from memory and answer writes 503 503001 within a few
// seconds; once etcd is back they recover by themselves. The test logs
// what the probes saw.
func TestTotalLoss(t *testing.T) {
	f := startFleet(t, 2)
	a, b := f.reps[0], f.reps[1]
	root := a.login(t, "root", rootPassword)
	const pw = "Dave-Passw0rd!"
	for _, name := range []string{"dave", "prober"} {
		a.createAccount(t, root, name, pw)
		waitAccount(t, f, root, name)
	}
	user := b.login(t, "dave", pw)
	env := sessionEnv(t, f, root)
	r, err := a.applyToken(env.app, env.access, env.channel, "10001")
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("applyToken: %v %v", r, err)
	}
	session := r.field("token")
	reads := map[string]func(rp *replica) func() error{
		"root token": func(rp *replica) func() error {
			return expect(rp, http.StatusOK, "", "GET", "/v4/self-perms", nil, bearer(root)...)
		},
		"user token": func(rp *replica) func() error {
			return expect(rp, http.StatusOK, "", "GET", "/v4/self-perms", nil, bearer(user)...)
		},
		"ccmessaging-token": func(rp *replica) func() error {
			return verifies(rp, env.app, env.access, session, http.StatusOK)
		},
	}
	for _, rp := range f.reps {
		for name, check := range reads {
			within(t, propagationBound, name+" on "+rp.name, check(rp))
		}
	}

	tl := newTimeline()
	ctx, cancel := context.WithTimeout(context.Background(), 3*patience)
	defer cancel()
	startProbes(ctx, tl, f, root, user, env, session)
	defer tl.wait()
	defer cancel()
	time.Sleep(time.Second) // the probes' view of the healthy cluster

	stopped := time.Now()
	tl.mark("stopping two etcd members of three")
	f.etcd.Stop(0, 1)
	tl.mark("two members stopped: no quorum")
	withoutStore(t, f, tl, "without quorum", root, env, reads)
	tl.mark("stopping the last etcd member")
	f.etcd.Stop()
	tl.mark("every etcd member stopped")
	withoutStore(t, f, tl, "without etcd", root, env, reads)

	tl.mark("restarting every etcd member")
	f.etcd.Restart()
	tl.mark("every etcd member restarted")
	for _, rp := range f.reps {
		within(t, patience, "replica "+rp.name+" ready", expect(rp, http.StatusOK, "", "GET", "/readyz", nil))
	}
	tl.mark("both replicas ready")
	a.login(t, "dave", pw)
	a.createAccount(t, root, "erin", pw)
	waitAccount(t, f, root, "erin")
	tok := b.login(t, "erin", pw)
	a.must(t, "DELETE", "/v4/token", nil, bearer(tok)...)
	within(t, propagationBound, "logout on A after recovery", refused(f, tok))
	r, err = b.applyToken(env.app, env.access, env.channel, "10002")
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("applyToken on B after recovery: %v %v", r, err)
	}
	if err := verifies(a, env.app, env.access, r.field("token"), http.StatusOK)(); err != nil {
		t.Fatalf("after recovery, a session opened on B: %v", err)
	}
	time.Sleep(time.Second) // the probes' view of the recovered cluster
	cancel()
	tl.wait()
	t.Logf("what clients saw: probes every 200 ms, runs of equal status by the time each request was sent, relative to the loss of quorum:\n%s", tl.report(stopped))
}

// withoutStore checks the replicas while etcd cannot serve them: they turn
// not ready, verify known tokens (reads) from memory and refuse writes.
func withoutStore(t *testing.T, f *fleet, tl *timeline, when, root string, env *sessionEnvironment, reads map[string]func(rp *replica) func() error) {
	t.Helper()
	for _, rp := range f.reps {
		within(t, patience, "replica "+rp.name+" not ready "+when, expect(rp, http.StatusServiceUnavailable, "", "GET", "/readyz", nil))
	}
	tl.mark("both replicas not ready")
	for _, rp := range f.reps {
		for name, check := range reads {
			if err := check(rp)(); err != nil {
				t.Errorf("%s %s: %v", name, when, err)
			}
		}
	}
	refuseWrites(t, f, when, root, env)
}

// startProbes probes the replicas every 200 ms until ctx ends: readiness,
// verification of known tokens, and writes.
func startProbes(ctx context.Context, tl *timeline, f *fleet, root, user string, env *sessionEnvironment, session string) {
	const every = 200 * time.Millisecond
	a, b := f.reps[0], f.reps[1]
	for _, rp := range f.reps {
		tl.probe(ctx, "GET /readyz on "+rp.name, every, func() (reply, error) { return rp.send("GET", "/readyz", nil) })
	}
	tl.probe(ctx, "root token (GET /v4/self-perms) on A", every, func() (reply, error) { return a.selfPerms(root) })
	tl.probe(ctx, "user token (GET /v4/self-perms) on B", every, func() (reply, error) { return b.selfPerms(user) })
	tl.probe(ctx, "ccmessaging-token (GET session) on B", every, func() (reply, error) {
		return b.session(env.app, env.access, session)
	})
	tl.probe(ctx, "login (POST /v4/token) on B", every, func() (reply, error) {
		return b.send("POST", "/v4/token", credentials{"prober", "Dave-Passw0rd!"})
	})
	tl.probe(ctx, "applyToken on A", every, func() (reply, error) {
		return a.applyToken(env.app, env.access, env.channel, "prober")
	})
}

// refuseWrites checks that writes on both replicas answer 503 with the
// store-unavailable error within writeBound, all sent at once.
func refuseWrites(t *testing.T, f *fleet, when, root string, env *sessionEnvironment) {
	t.Helper()
	a, b := f.reps[0], f.reps[1]
	writes := []struct {
		name string
		do   func() (reply, error)
		want func(reply) error
	}{
		{"login on A", func() (reply, error) {
			return a.send("POST", "/v4/token", credentials{"dave", "Dave-Passw0rd!"})
		}, storeUnavailable},
		{"account creation on B", func() (reply, error) {
			return b.send("POST", "/v4/accounts", map[string]any{"name": "frank", "password": "Frank-Passw0rd!", "roles": []string{"developer"}}, bearer(root)...)
		}, storeUnavailable},
		{"applyToken on A", func() (reply, error) {
			return a.applyToken(env.app, env.access, env.channel, "10003")
		}, func(r reply) error {
			if r.Status != http.StatusServiceUnavailable || r.field("resultDesc") != "Store unavailable" {
				return fmt.Errorf("got %s, want 503 Store unavailable", r)
			}
			return nil
		}},
	}
	errs := make([]error, len(writes))
	var wg sync.WaitGroup
	for i, w := range writes {
		wg.Go(func() {
			sent := time.Now()
			r, err := w.do()
			took := time.Since(sent)
			if err == nil {
				err = w.want(r)
			}
			if err == nil && took > writeBound {
				err = fmt.Errorf("answered after %v", took)
			}
			if err != nil {
				errs[i] = fmt.Errorf("%s %s: %w", w.name, when, err)
			}
			t.Logf("%s, %s answered %d after %v", when, w.name, r.Status, took.Round(time.Millisecond))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Error(err)
	}
}

// storeUnavailable checks the engine API's answer to a write without a
// store.
func storeUnavailable(r reply) error { return r.is(http.StatusServiceUnavailable, "503001") }
