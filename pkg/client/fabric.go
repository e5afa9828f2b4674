package client

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FabricConfig configures a Fabric client.
type FabricConfig struct {
	// BaseURL is Gatehouse's address, e.g. https://gatehouse.example:30100.
	BaseURL           string
	AppKey, AppSecret string
	// Expire is the AccessToken lifetime asked for with X-Token-Expire, in
	// whole seconds (1s..1h); zero takes the server's default (600 s).
	Expire time.Duration
	// RefreshBefore is how long before CreateTime+Expires a new
	// AccessToken is fetched; it is capped at a tenth of the lifetime
	// [30s].
	RefreshBefore time.Duration
	// HTTPClient sends every request [http.DefaultClient].
	HTTPClient *http.Client
}

// Fabric keeps an API Fabric AccessToken for one app. It is safe for
// concurrent use.
type Fabric struct {
	cfg FabricConfig
	hc  *http.Client

	mu      sync.Mutex
	token   string
	refresh time.Time
}

// NewFabric returns a client that fetches an AccessToken on first use.
func NewFabric(cfg FabricConfig) *Fabric {
	if cfg.RefreshBefore <= 0 {
		cfg.RefreshBefore = 30 * time.Second
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	return &Fabric{cfg: cfg, hc: httpClient(cfg.HTTPClient)}
}

// tokenResponse is the answer of tokenByAkSk; every value is a string.
type tokenResponse struct {
	AccessToken string `json:"AccessToken"`
	CreateTime  string `json:"CreateTime"`
	Expires     string `json:"Expires"`
}

// AccessToken returns an AccessToken valid for a while yet, fetching one
// (tokenByAkSk) when there is none or the current one is about to expire.
func (f *Fabric) AccessToken(ctx context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.token != "" && time.Now().Before(f.refresh) {
		return f.token, nil
	}
	var hdr http.Header
	if f.cfg.Expire > 0 {
		hdr = http.Header{"X-Token-Expire": {strconv.Itoa(int(f.cfg.Expire / time.Second))}}
	}
	asked := time.Now()
	var out tokenResponse
	in := map[string]string{"app_key": f.cfg.AppKey, "app_secret": f.cfg.AppSecret}
	if err := call(ctx, f.hc, http.MethodPost, f.cfg.BaseURL+"/apigovernance/api/oauth/tokenByAkSk", hdr, in, &out); err != nil {
		return "", err
	}
	created, err1 := strconv.ParseInt(out.CreateTime, 10, 64)
	secs, err2 := strconv.ParseInt(out.Expires, 10, 64)
	if err1 != nil || err2 != nil || out.AccessToken == "" {
		return "", &Error{Status: http.StatusOK, Message: "tokenByAkSk answered without AccessToken, CreateTime or Expires"}
	}
	lifetime := time.Duration(secs) * time.Second
	// The server's clock says when the token expires; the local clock is
	// trusted no further than the request's start plus the lifetime.
	expires := time.Unix(created, 0).Add(lifetime)
	if local := asked.Add(lifetime); local.Before(expires) {
		expires = local
	}
	f.token, f.refresh = out.AccessToken, refreshAt(expires.Add(-lifetime), expires, f.cfg.RefreshBefore)
	return f.token, nil
}

// invalidate forgets tok if it is still the current AccessToken.
func (f *Fabric) invalidate(tok string) {
	f.mu.Lock()
	if f.token == tok {
		f.token = ""
	}
	f.mu.Unlock()
}
