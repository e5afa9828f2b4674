package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/server"
)

// Paths of the scenarios.
const (
	sessionPath = "/apiaccess/ccmessaging/session"
	applyPath   = "/apiaccess/ccmessaging/applyToken"
	tokenPath   = "/apigovernance/api/oauth/tokenByAkSk"
)

const (
	// sessionUsers is how many sessions the session scenario cycles through.
	sessionUsers = 1000
	// renewTTL is the ccmessaging-token lifetime of the in-process server
	// of the renew scenario.
	renewTTL = time.Second
	// maxRenewWait bounds how long the renew scenario waits for the tokens
	// of a running server to expire.
	maxRenewWait = time.Minute
	// The renew scenario opens enough sessions to renew renewShare of the
	// floor's rate for the whole duration, at most maxRenewSessions; when
	// they run out earlier, the measurement ends with them.
	renewShare       = 0.6
	maxRenewSessions = 200_000
)

// runner runs the load scenarios against the servers it starts or
// connects to.
type runner struct {
	cfg    Config
	d      *driver
	main   *target
	short  *target // in-process server whose ccmessaging tokens live renewTTL
	warn   *warnings
	crypto *CryptoFloor // measured just before the login scenario
	floor  float64      // the floor scenario's throughput, which runs first
}

// plan is how a scenario sends its load.
type plan struct {
	base    string // the server's base URL
	warm    *call  // a cheap request that opens the connections
	sources []source
	check   checker
	skip    string // why the scenario cannot run; empty when it can
}

// scenario prepares and runs one load scenario. A scenario compared with
// the floor runs paired with it (see driver.run), unless CPU profiles are
// taken, which would then mix the two.
func (r *runner) scenario(ctx context.Context, name string) (Result, error) {
	p, err := r.prepare(ctx, name)
	if err != nil {
		return Result{}, err
	}
	if p.skip != "" {
		return Result{Name: name, Skipped: p.skip}, nil
	}
	var pair *plan
	if scenarios[name].ratioTo == Floor && r.cfg.ProfileDir == "" {
		if pair, err = r.fixed(p.base, http.MethodGet, "/healthz", nil, nil); err != nil {
			return Result{}, err
		}
	}
	if name == Login {
		f, err := measureCrypto(password.DefaultParams(), defaultRSABits)
		if err != nil {
			return Result{}, fmt.Errorf("crypto floor: %w", err)
		}
		r.crypto = &f
	}
	runtime.GC()
	n := r.warn.count()
	m, pm, err := r.d.run(ctx, name, p, pair)
	if err != nil {
		return Result{}, err
	}
	res := result(name, m)
	if pm != nil {
		res.FloorRPS = pm.rps()
	}
	res.Warnings, res.LastWarning = r.warn.since(n)
	if name == Renew && r.short != nil { // no other scenario uses it: free its memory
		err := r.short.close(ctx)
		r.short = nil
		if err != nil {
			return Result{}, err
		}
	}
	return res, nil
}

// prepare seeds what the scenario called name needs and returns its plan.
func (r *runner) prepare(ctx context.Context, name string) (*plan, error) {
	if name == Renew {
		return r.renewPlan(ctx)
	}
	t, err := r.mainTarget(ctx)
	if err != nil {
		return nil, err
	}
	switch name {
	case Floor:
		return r.fixed(t.api.base, http.MethodGet, "/healthz", nil, nil)
	case Verify:
		return r.fixed(t.api.base, http.MethodGet, "/v4/self-perms", bearer(t.root), nil)
	case Fabric:
		if err := t.seedApp(ctx); err != nil {
			return nil, err
		}
		body, _ := json.Marshal(map[string]string{"app_key": t.app.Key, "app_secret": t.app.Secret})
		return r.fixed(t.api.base, http.MethodPost, tokenPath, nil, body)
	case Session:
		tokens, err := t.openSessions(ctx, "s", sessionUsers, r.cfg.Connections)
		if err != nil {
			return nil, err
		}
		return sessionPlan(t.api.base, *t.app, tokens, r.cfg.Connections, false, statusOK)
	case Apply:
		return r.applyPlan(ctx, t)
	case Login:
		return r.loginPlan(ctx, t)
	}
	return nil, fmt.Errorf("unknown scenario %q", name)
}

// mainTarget returns the server of every scenario but renew, starting or
// connecting to it on first use.
func (r *runner) mainTarget(ctx context.Context) (*target, error) {
	if r.main != nil {
		return r.main, nil
	}
	var err error
	if r.cfg.Target != "" {
		r.main, err = connect(ctx, strings.TrimRight(r.cfg.Target, "/"), r.cfg.RootPassword, r.d.client())
	} else {
		r.main, err = startLocal(ctx, r.warn, r.d.client(), nil)
	}
	return r.main, err
}

// renewTarget returns the server of the renew scenario: in-process, one
// whose ccmessaging-tokens live renewTTL; else the running server.
func (r *runner) renewTarget(ctx context.Context) (*target, error) {
	if r.cfg.Target != "" {
		return r.mainTarget(ctx)
	}
	if r.short == nil {
		var err error
		r.short, err = startLocal(ctx, r.warn, r.d.client(), func(c *server.Config) { c.CCMessagingTokenTTL = renewTTL })
		if err != nil {
			return nil, err
		}
	}
	return r.short, nil
}

// close stops or cleans up every server used.
func (r *runner) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	for _, t := range []*target{r.main, r.short} {
		if t != nil {
			errs = append(errs, t.close(ctx))
		}
	}
	r.main, r.short = nil, nil
	return errors.Join(errs...)
}

// newPlan returns a plan for the server at base, without sources yet.
func newPlan(base string, check checker) (*plan, error) {
	w, err := newCall(http.MethodGet, base+"/healthz", nil, nil)
	if err != nil {
		return nil, err
	}
	return &plan{base: base, warm: w, check: check}, nil
}

// fixed is a plan whose every worker sends the same request.
func (r *runner) fixed(base, method, path string, header http.Header, body []byte) (*plan, error) {
	c, err := newCall(method, base+path, header, body)
	if err != nil {
		return nil, err
	}
	p, err := newPlan(base, statusOK)
	if err != nil {
		return nil, err
	}
	for range r.cfg.Connections {
		p.sources = append(p.sources, cycle([]*call{c}))
	}
	return p, nil
}

// sessionPlan spreads tokens over at most workers workers, each sending
// GET session with its tokens: each once when once is set, else cycling.
func sessionPlan(base string, ap app, tokens []string, workers int, once bool, check checker) (*plan, error) {
	p, err := newPlan(base, check)
	if err != nil {
		return nil, err
	}
	h := bearer(ap.Access)
	h.Set("x-app-key", ap.Key)
	proto, err := newCall(http.MethodGet, base+sessionPath, h, nil)
	if err != nil {
		return nil, err
	}
	workers = min(workers, len(tokens))
	for i := range workers {
		var mine []string
		for j := i; j < len(tokens); j += workers {
			mine = append(mine, tokens[j])
		}
		p.sources = append(p.sources, tokenCalls(proto, mine, once))
	}
	return p, nil
}

// tokenCalls yields requests of proto, each with the next of tokens in
// its ccmessaging-token header: every token once when once is set, else
// cycling through them. The requests are built as they are sent, so that
// a plan of many tokens keeps strings, not requests, in the heap it
// shares with an in-process server.
func tokenCalls(proto *call, tokens []string, once bool) source {
	i := 0
	return func() (*http.Request, bool) {
		if once && i == len(tokens) {
			return nil, false
		}
		r := proto.request()
		r.Header = proto.proto.Header.Clone()
		r.Header.Set("ccmessaging-token", tokens[i%len(tokens)])
		i++
		return r, true
	}
}

// renewPlan opens sessions, waits until their tokens expired, and sends
// each expired token once: every request renews a session.
func (r *runner) renewPlan(ctx context.Context) (*plan, error) {
	t, err := r.renewTarget(ctx)
	if err != nil {
		return nil, err
	}
	n := max(4*r.cfg.Connections, min(int(r.floor*renewShare*r.cfg.Duration.Seconds()), maxRenewSessions))
	tokens, err := t.openSessions(ctx, "r", n, r.cfg.Connections)
	if err != nil {
		return nil, err
	}
	exp, err := latestExpiry(tokens)
	if err != nil {
		return nil, err
	}
	wait := time.Until(exp) + 100*time.Millisecond
	if wait > maxRenewWait {
		return &plan{skip: fmt.Sprintf("the server's ccmessaging-tokens live longer than %s (run it with --ccmessaging-token-ttl 1s)", maxRenewWait)}, nil
	}
	if err := sleep(ctx, wait); err != nil {
		return nil, err
	}
	return sessionPlan(t.api.base, *t.app, tokens, r.cfg.Connections, true, renewed)
}

// renewed accepts a 200 answer that carries a renewed token.
func renewed(resp *http.Response) string {
	if why := statusOK(resp); why != "" {
		return why
	}
	if resp.Header.Get("ccmessaging-token") == "" {
		return "no ccmessaging-token header"
	}
	return ""
}

// latestExpiry returns the latest exp of tokens, read without verification.
func latestExpiry(tokens []string) (time.Time, error) {
	var latest time.Time
	p := jwt.NewParser()
	for _, tok := range tokens {
		var c jwt.RegisteredClaims
		if _, _, err := p.ParseUnverified(tok, &c); err != nil || c.ExpiresAt == nil {
			return time.Time{}, fmt.Errorf("unreadable ccmessaging-token: %v", err)
		}
		if c.ExpiresAt.After(latest) {
			latest = c.ExpiresAt.Time
		}
	}
	return latest, nil
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// applyPlan sends applyToken for a new user every time.
func (r *runner) applyPlan(ctx context.Context, t *target) (*plan, error) {
	if err := t.seedApp(ctx); err != nil {
		return nil, err
	}
	h := bearer(t.app.Access)
	h.Set("x-app-key", t.app.Key)
	proto, err := newCall(http.MethodPost, t.api.base+applyPath, h, []byte{})
	if err != nil {
		return nil, err
	}
	p, err := newPlan(t.api.base, statusOK)
	if err != nil {
		return nil, err
	}
	for i := range r.cfg.Connections {
		prefix := fmt.Appendf(nil, `{"userName":"Bench User","channelId":%q,"locale":"en","userId":"%sa%d-`, t.channel, t.runID, i)
		n := 0
		p.sources = append(p.sources, func() (*http.Request, bool) {
			n++
			body := append(strconv.AppendInt(append([]byte{}, prefix...), int64(n), 10), `"}`...)
			return (&call{proto: proto.proto, body: body}).request(), true
		})
	}
	return p, nil
}

// loginPlan gives each worker two accounts of its own, so that no two
// logins of one account run at once and none is locked out.
func (r *runner) loginPlan(ctx context.Context, t *target) (*plan, error) {
	names, pw, err := t.loginAccounts(ctx, 2*r.cfg.Connections)
	if err != nil {
		return nil, err
	}
	p, err := newPlan(t.api.base, statusOK)
	if err != nil {
		return nil, err
	}
	for i := range r.cfg.Connections {
		var calls []*call
		for _, name := range []string{names[i], names[i+r.cfg.Connections]} {
			body, _ := json.Marshal(map[string]string{"name": name, "password": pw})
			c, err := newCall(http.MethodPost, t.api.base+"/v4/token", nil, body)
			if err != nil {
				return nil, err
			}
			calls = append(calls, c)
		}
		p.sources = append(p.sources, cycle(calls))
	}
	return p, nil
}
