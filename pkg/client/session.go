package client

import (
	"context"
	"errors"
	"net/http"
	"sync"
)

// Headers of the ccmessaging API.
const (
	AppKeyHeader       = "X-App-Key"
	SessionTokenHeader = "Ccmessaging-Token"
)

// User is the end user a Session is for (the body of applyToken).
type User struct {
	ID        string `json:"userId"`
	Name      string `json:"userName"`
	ChannelID string `json:"channelId"`
	Locale    string `json:"locale"`
}

// Session holds the ccmessaging-token of one user on one channel. It is
// safe for concurrent use.
type Session struct {
	fabric *Fabric
	user   User

	mu    sync.Mutex
	token string
}

// Session returns the session of u; it applies for a token on first use.
func (f *Fabric) Session(u User) *Session {
	return &Session{fabric: f, user: u}
}

// Token returns the session's current ccmessaging-token, applying for one
// (applyToken) when there is none.
func (s *Session) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != "" {
		return s.token, nil
	}
	return s.apply(ctx)
}

// apply opens the session; s.mu is held. An AccessToken refused with 401
// is replaced once.
func (s *Session) apply(ctx context.Context) (string, error) {
	for attempt := 0; ; attempt++ {
		access, err := s.fabric.AccessToken(ctx)
		if err != nil {
			return "", err
		}
		var out struct {
			Token string `json:"token"`
		}
		err = call(ctx, s.fabric.hc, http.MethodPost, s.fabric.cfg.BaseURL+"/apiaccess/ccmessaging/applyToken",
			s.fabric.headers(access), s.user, &out)
		var ae *Error
		if attempt == 0 && errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
			s.fabric.invalidate(access)
			continue
		}
		if err != nil {
			return "", err
		}
		s.token = out.Token
		return s.token, nil
	}
}

// headers are the app's credentials of a ccmessaging request.
func (f *Fabric) headers(access string) http.Header {
	h := http.Header{}
	h.Set(AppKeyHeader, f.cfg.AppKey)
	h.Set("Authorization", "Bearer "+access)
	return h
}

// adopt takes the renewed token of an answer.
func (s *Session) adopt(resp *http.Response) {
	if tok := resp.Header.Get(SessionTokenHeader); tok != "" {
		s.mu.Lock()
		s.token = tok
		s.mu.Unlock()
	}
}

// invalidate forgets tok if it is still the session's token.
func (s *Session) invalidate(tok string) {
	s.mu.Lock()
	if s.token == tok {
		s.token = ""
	}
	s.mu.Unlock()
}

// Do sends req with the three ccmessaging headers (x-app-key, the
// AccessToken, the ccmessaging-token) and adopts a renewed token from the
// answer. After a 401 answer the session applies again (with a fresh
// AccessToken) and sends req once more, if its body can be replayed (else
// the 401 is returned, and the next request applies). req is not
// modified.
func (s *Session) Do(req *http.Request) (*http.Response, error) {
	resp, tok, access, err := s.send(req, false)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	s.invalidate(tok)
	s.fabric.invalidate(access)
	if !replayable(req) {
		return resp, nil
	}
	discard(resp)
	resp, _, _, err = s.send(req, true)
	return resp, err
}

// send sends req once with the current credentials and returns the ones
// it used.
func (s *Session) send(req *http.Request, retry bool) (resp *http.Response, tok, access string, err error) {
	if tok, err = s.Token(req.Context()); err != nil {
		return nil, "", "", err
	}
	if access, err = s.fabric.AccessToken(req.Context()); err != nil {
		return nil, "", "", err
	}
	h := s.fabric.headers(access)
	h.Set(SessionTokenHeader, tok)
	if resp, err = send(s.fabric.hc, req, h, retry); err != nil {
		return nil, "", "", err
	}
	s.adopt(resp)
	return resp, tok, access, nil
}

// End ends the session (DELETE /apiaccess/ccmessaging/session); the next
// request applies for a new one.
func (s *Session) End(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token == "" {
		return nil
	}
	access, err := s.fabric.AccessToken(ctx)
	if err != nil {
		return err
	}
	h := s.fabric.headers(access)
	h.Set(SessionTokenHeader, s.token)
	err = call(ctx, s.fabric.hc, http.MethodDelete, s.fabric.cfg.BaseURL+"/apiaccess/ccmessaging/session", h, nil, nil)
	s.token = ""
	return err
}
