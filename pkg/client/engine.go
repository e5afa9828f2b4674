package client

import (
	"context"
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

	mu      sync.Mutex // held during a login, so concurrent callers wait for one
	token   string
	refresh time.Time // log in again from then on
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
// none or the current one is about to expire.
func (e *Engine) Token(ctx context.Context) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.token != "" && time.Now().Before(e.refresh) {
		return e.token, nil
	}
	return e.login(ctx)
}

// login asks for a new token; e.mu is held.
func (e *Engine) login(ctx context.Context) (string, error) {
	tok, err := login(ctx, e.hc, e.cfg.BaseURL, e.cfg.Name, e.cfg.Password, e.cfg.TokenTTL)
	if err != nil {
		return "", err
	}
	iat, exp, err := TokenTimes(tok)
	if err != nil {
		return "", err
	}
	e.token, e.refresh = tok, refreshAt(iat, exp, e.cfg.RefreshBefore)
	return e.token, nil
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

// invalidate forgets tok if it is still the current token.
func (e *Engine) invalidate(tok string) {
	e.mu.Lock()
	if e.token == tok {
		e.token = ""
	}
	e.mu.Unlock()
}

// Do sends req with the token in Authorization. After a 401 answer the
// client logs in again and sends req once more, if its body can be
// replayed (else the 401 is returned, and the next request logs in). req
// is not modified.
func (e *Engine) Do(req *http.Request) (*http.Response, error) {
	tok, err := e.Token(req.Context())
	if err != nil {
		return nil, err
	}
	resp, err := send(e.hc, req, bearer(tok), false)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	e.invalidate(tok)
	if !replayable(req) {
		return resp, nil
	}
	discard(resp)
	if tok, err = e.Token(req.Context()); err != nil {
		return nil, err
	}
	return send(e.hc, req, bearer(tok), true)
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
