package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// api calls a Gatehouse server's JSON endpoints to seed and clean up what
// the scenarios need.
type api struct {
	base string // scheme://host:port
	hc   *http.Client
}

// apiError is a non-200 answer.
type apiError struct {
	method, path string
	status       int
	body         string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: status %d: %s", e.method, e.path, e.status, e.body)
}

// call sends in (when not nil) as JSON with header and decodes a 200
// answer into out (when not nil). It returns the response headers.
func (a *api) call(ctx context.Context, method, path string, header http.Header, in, out any) (http.Header, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &apiError{method: method, path: path, status: resp.StatusCode, body: strings.TrimSpace(string(raw))}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return resp.Header, nil
}

// bearer is an Authorization header carrying tok.
func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// login returns an engine token of name.
func (a *api) login(ctx context.Context, name, password string) (string, error) {
	var out struct {
		Token string `json:"token"`
	}
	_, err := a.call(ctx, http.MethodPost, "/v4/token", nil, map[string]string{"name": name, "password": password}, &out)
	return out.Token, err
}

// createAccount creates an account with the developer role.
func (a *api) createAccount(ctx context.Context, root, name, password string) error {
	_, err := a.call(ctx, http.MethodPost, "/v4/accounts", bearer(root),
		map[string]any{"name": name, "password": password, "roles": []string{"developer"}}, nil)
	return err
}

// app is an API Fabric app and an AccessToken of it.
type app struct {
	Key    string `json:"appKey"`
	Secret string `json:"appSecret"`
	Access string `json:"-"`
}

// createApp creates an app and fetches an AccessToken valid for an hour.
func (a *api) createApp(ctx context.Context, root, name string) (app, error) {
	var ap app
	if _, err := a.call(ctx, http.MethodPost, "/v4/apps", bearer(root), map[string]string{"name": name}, &ap); err != nil {
		return app{}, err
	}
	var tok struct {
		AccessToken string `json:"AccessToken"`
	}
	_, err := a.call(ctx, http.MethodPost, "/apigovernance/api/oauth/tokenByAkSk", http.Header{"X-Token-Expire": {"3600"}},
		map[string]string{"app_key": ap.Key, "app_secret": ap.Secret}, &tok)
	ap.Access = tok.AccessToken
	return ap, err
}

// createChannel creates a channel open to appKey and returns its id.
func (a *api) createChannel(ctx context.Context, root, name, appKey string) (string, error) {
	var ch struct {
		ID string `json:"id"`
	}
	_, err := a.call(ctx, http.MethodPost, "/v4/channels", bearer(root),
		map[string]any{"name": name, "appKeys": []string{appKey}, "sessionIdleTimeout": "1h"}, &ch)
	return ch.ID, err
}

// applyToken opens the session of user on channel and returns its token.
func (a *api) applyToken(ctx context.Context, ap app, channel, user string) (string, error) {
	var out struct {
		Token string `json:"token"`
	}
	h := bearer(ap.Access)
	h.Set("x-app-key", ap.Key)
	_, err := a.call(ctx, http.MethodPost, "/apiaccess/ccmessaging/applyToken", h,
		applyBody{UserID: user, UserName: "Bench User", ChannelID: channel, Locale: "en"}, &out)
	return out.Token, err
}

// applyBody is the body of applyToken.
type applyBody struct {
	UserID    string `json:"userId"`
	UserName  string `json:"userName"`
	ChannelID string `json:"channelId"`
	Locale    string `json:"locale"`
}

// remove deletes what path names, with the root token.
func (a *api) remove(ctx context.Context, root, path string) error {
	_, err := a.call(ctx, http.MethodDelete, path, bearer(root), nil, nil)
	return err
}
