package client

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// EngineConfig configures an Engine client.
type EngineConfig struct {
	// BaseURL is Gatehouse's address, e.g. https://gatehouse.example:30100.
	BaseURL        string
	Name, Password string
	// TokenTTL is the tokenExpirationTime asked for at login (15m..24h);
	// zero takes the server's default.
	TokenTTL time.Duration
	// RefreshBefore is how long before exp the client logs in again; it
	// is capped at a tenth of the token's lifetime [1m].
	RefreshBefore time.Duration
	// HTTPClient sends every request [http.DefaultClient].
	HTTPClient *http.Client
}

// Engine keeps an engine token for one account. It is safe for concurrent
// use.
type Engine struct {
	cfg EngineConfig
	hc  *http.Client

	mu      sync.Mutex
	token   string
	refresh time.Time  // log in again from then on
	last    *loginCall // the latest login: in flight, or done with its outcome
}

// loginCall is one login that concurrent callers share.
type loginCall struct {
	replaces string        // the token it replaces; "" when there was none
	done     chan struct{} // closed once token or err is set
	token    string
	err      error
}

// wait returns the outcome of c, or ctx's error if ctx ends first.
func (c *loginCall) wait(ctx context.Context) (string, error) {
	select {
	case <-c.done:
		return c.token, c.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// NewEngine returns a client that logs in on first use.
func NewEngine(cfg EngineConfig) *Engine {
	if cfg.RefreshBefore <= 0 {
		cfg.RefreshBefore = time.Minute
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	return &Engine{cfg: cfg, hc: httpClient(cfg.HTTPClient)}
}

// Token returns a token valid for a while yet, logging in when there is
// none or the current one is about to expire. Concurrent callers share
// one login.
func (e *Engine) Token(ctx context.Context) (string, error) {
	e.mu.Lock()
	if e.token != "" && time.Now().Before(e.refresh) {
		defer e.mu.Unlock()
		return e.token, nil
	}
	c := e.startLogin(ctx, e.token)
	e.mu.Unlock()
	return c.wait(ctx)
}

// relogin replaces refused, a token the server refused. Every caller
// whose request was refused with the same token shares one login and its
// outcome, a failure included: N concurrent refusals cost one login, and
// a password changed meanwhile one failed attempt, not N.
func (e *Engine) relogin(ctx context.Context, refused string) (string, error) {
	e.mu.Lock()
	var c *loginCall
	switch {
	case e.token != "" && e.token != refused && time.Now().Before(e.refresh):
		defer e.mu.Unlock()
		return e.token, nil
	case e.last != nil && e.last.replaces == refused:
		c = e.last
	default:
		e.forget(refused)
		c = e.startLogin(ctx, refused)
	}
	e.mu.Unlock()
	return c.wait(ctx)
}

// startLogin returns the login in flight, or starts one that replaces
// old; e.mu is held. The login runs on its own, not cancelled with the
// ctx of the caller that started it, since others may wait for it too
// (EngineConfig.HTTPClient's Timeout bounds it).
func (e *Engine) startLogin(ctx context.Context, old string) *loginCall {
	if c := e.last; c != nil {
		select {
		case <-c.done:
		default:
			return c
		}
	}
	c := &loginCall{replaces: old, done: make(chan struct{})}
	e.last = c
	go func() {
		defer close(c.done)
		tok, err := login(context.WithoutCancel(ctx), e.hc, e.cfg.BaseURL, e.cfg.Name, e.cfg.Password, e.cfg.TokenTTL)
		var iat, exp time.Time
		if err == nil {
			iat, exp, err = TokenTimes(tok)
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if err != nil {
			c.err = err
			return
		}
		c.token = tok
		e.token, e.refresh = tok, refreshAt(iat, exp, e.cfg.RefreshBefore)
	}()
	return c
}

// Login asks baseURL for an engine token of name (POST /v4/token), valid
// ttl (15m..24h; zero takes the server's default). hc sends the request
// [http.DefaultClient].
func Login(ctx context.Context, hc *http.Client, baseURL, name, password string, ttl time.Duration) (string, error) {
	return login(ctx, httpClient(hc), strings.TrimSuffix(baseURL, "/"), name, password, ttl)
}

func login(ctx context.Context, hc Doer, baseURL, name, password string, ttl time.Duration) (string, error) {
	in := map[string]string{"name": name, "password": password}
	if ttl > 0 {
		in["tokenExpirationTime"] = ttl.String()
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := call(ctx, hc, http.MethodPost, baseURL+"/v4/token", nil, in, &out); err != nil {
		return "", err
	}
	return out.Token, nil
}

// Logout revokes token at baseURL (DELETE /v4/token). hc sends the
// request [http.DefaultClient].
func Logout(ctx context.Context, hc *http.Client, baseURL, token string) error {
	return call(ctx, httpClient(hc), http.MethodDelete, strings.TrimSuffix(baseURL, "/")+"/v4/token", bearer(token), nil, nil)
}

// forget drops tok if it is still the current token; e.mu is held.
func (e *Engine) forget(tok string) {
	if e.token == tok {
		e.token = ""
	}
}

// Do sends req with the token in Authorization. When the answer refuses
// the token itself — 401 with errorCode 401205 (expired) or 401201
// (revoked, or otherwise not valid) — the client logs in again and sends
// req once more, if its body can be replayed (else the 401 is returned,
// and the next request logs in). Concurrent requests refused with the
// same token share one login. A failed login is returned as its error;
// a second refusal after the login is returned as it is. Other 401s
// (wrong credentials or current password, 401202 and 401207) and 403s
// are answers to the request, returned without a login. req is not
// modified.
func (e *Engine) Do(req *http.Request) (*http.Response, error) {
	tok, err := e.Token(req.Context())
	if err != nil {
		return nil, err
	}
	resp, err := send(e.hc, req, bearer(tok), false)
	if err != nil || !tokenRefused(resp) {
		return resp, err
	}
	if !replayable(req) {
		e.mu.Lock()
		e.forget(tok)
		e.mu.Unlock()
		return resp, nil
	}
	discard(resp)
	if tok, err = e.relogin(req.Context(), tok); err != nil {
		return nil, err
	}
	return send(e.hc, req, bearer(tok), true)
}

// Error codes by which the engine refuses a token itself; logging in
// again may help.
const (
	codeUnauthorized = "401201" // revoked, malformed, signed by an unknown key, ...
	codeTokenExpired = "401205"
)

// tokenRefused reports whether resp refuses the token it was sent with:
// 401 with errorCode 401201 or 401205. It reads the start of the body to
// find out and leaves the body whole for the caller.
func tokenRefused(resp *http.Response) bool {
	if resp.StatusCode != http.StatusUnauthorized {
		return false
	}
	head, err := io.ReadAll(io.LimitReader(resp.Body, maxRefusal))
	resp.Body = readCloser{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	if err != nil {
		return false
	}
	var body struct {
		ErrorCode string `json:"errorCode"`
	}
	if json.Unmarshal(head, &body) != nil {
		return false
	}
	return body.ErrorCode == codeUnauthorized || body.ErrorCode == codeTokenExpired
}

// maxRefusal bounds the part of a 401 body read to find its errorCode;
// Gatehouse's refusals are far shorter.
const maxRefusal = 4 << 10

// readCloser reads from one source and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}

// Logout revokes the current token (DELETE /v4/token), if any.
func (e *Engine) Logout(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.token == "" {
		return nil
	}
	err := call(ctx, e.hc, http.MethodDelete, e.cfg.BaseURL+"/v4/token", bearer(e.token), nil, nil)
	e.token = ""
	return err
}

func bearer(tok string) http.Header {
	return http.Header{"Authorization": {"Bearer " + tok}}
}
