// Package client is a Go client of Gatehouse's two token families.
//
//   - Engine logs in to the engine API (POST /v4/token) as one account,
//     logs in again shortly before the token expires, and signs requests
//     with the token. When an answer refuses the token itself (401 with
//     errorCode 401205, expired, or 401201, revoked or otherwise invalid —
//     by a logout elsewhere, a password or role change, a key Gatehouse no
//     longer knows) it logs in again with its name and password and
//     repeats the request once; concurrent requests refused with the same
//     token share one login, a failed login is returned as the error, and
//     a refusal of the repeated request is returned as it is. Other 401s
//     (a wrong current password, 401207) and 403s are answers, not
//     reasons to log in.
//   - Fabric exchanges an app's key and secret for an API Fabric
//     AccessToken (tokenByAkSk) and reuses it until shortly before its
//     CreateTime+Expires.
//   - Session applies for a ccmessaging-token for one end user on one
//     channel (applyToken), sends the three ccmessaging headers, adopts
//     the renewed token Gatehouse returns in the ccmessaging-token response
//     header, and on a 401 applies again and retries once.
//
// Every type is safe for concurrent use. Requests are retried only when
// their body can be replayed: no body, or GetBody set (http.NewRequest
// sets it for *bytes.Buffer, *bytes.Reader and *strings.Reader bodies);
// the client does not buffer bodies itself. A request that cannot be
// replayed gets the refusal, and the next request logs in. A token given
// with BearerToken is never replaced: there are no credentials to log in
// with.
package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Error is an error answer of Gatehouse: Code and Message are errorCode
// and errorMessage of the error model, or resultCode and resultDesc of a
// ccmessaging answer.
type Error struct {
	Status  int
	Code    string
	Message string
	Detail  string
}

// Error implements error.
func (e *Error) Error() string {
	s := fmt.Sprintf("gatehouse: %d %s %s", e.Status, e.Code, e.Message)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// maxBody bounds the answers the client reads.
const maxBody = 1 << 20

// readError turns a failed answer into an *Error.
func readError(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	var body struct {
		ErrorCode    string `json:"errorCode"`
		ErrorMessage string `json:"errorMessage"`
		Detail       string `json:"detail"`
		ResultCode   string `json:"resultCode"`
		ResultDesc   string `json:"resultDesc"`
	}
	_ = json.Unmarshal(raw, &body)
	e := &Error{Status: resp.StatusCode, Code: body.ErrorCode, Message: body.ErrorMessage, Detail: body.Detail}
	if e.Code == "" {
		e.Code, e.Message = body.ResultCode, body.ResultDesc
	}
	return e
}

// Doer sends HTTP requests: *http.Client, *Engine (which adds its token)
// and the Doer of BearerToken are Doers.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// call sends a JSON request to Gatehouse and decodes a 200 answer into
// out (when not nil); other answers are *Error.
func call(ctx context.Context, hc Doer, method, url string, header http.Header, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readError(resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(out); err != nil {
		return fmt.Errorf("gatehouse: decode %s %s: %w", method, url, err)
	}
	return nil
}

// replayable reports whether req can be sent a second time.
func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// send sends a copy of req with header added; retry takes a fresh body.
func send(hc *http.Client, req *http.Request, header http.Header, retry bool) (*http.Response, error) {
	out := req.Clone(req.Context())
	if retry && req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		out.Body = body
	}
	for k, v := range header {
		out.Header[k] = v
	}
	return hc.Do(out)
}

// discard drains and closes a response that will not be returned.
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
}

// refreshAt is when a credential valid from issued to expires is renewed:
// before, a margin of at most max and at most a tenth of its lifetime.
func refreshAt(issued, expires time.Time, max time.Duration) time.Time {
	margin := min(max, expires.Sub(issued)/10)
	return expires.Add(-margin)
}

// TokenTimes reads iat and exp from a JWT's payload without verifying it:
// the client trusts the server it logged in to. A token without iat is
// taken as issued now.
func TokenTimes(tok string) (iat, exp time.Time, err error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return iat, exp, fmt.Errorf("gatehouse: the token is not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return iat, exp, fmt.Errorf("gatehouse: the token's payload: %w", err)
	}
	var c struct{ Iat, Exp int64 }
	if err := json.Unmarshal(raw, &c); err != nil || c.Exp == 0 {
		return iat, exp, fmt.Errorf("gatehouse: the token has no exp")
	}
	exp = time.Unix(c.Exp, 0)
	iat = time.Now()
	if c.Iat != 0 {
		iat = time.Unix(c.Iat, 0)
	}
	return iat, exp, nil
}

// httpClient returns a copy of hc (http.DefaultClient when nil) that does
// not carry credentials to another host on a redirect: Go strips
// Authorization there, but not the ccmessaging headers.
func httpClient(hc *http.Client) *http.Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	c := *hc
	next := hc.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > 0 && req.URL.Host != via[0].URL.Host {
			req.Header.Del(SessionTokenHeader)
			req.Header.Del(AppKeyHeader)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &c
}
