package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/engine"
)

// CookieName is the cookie holding a console session's engine token.
const CookieName = "gatehouse_console"

// CSRFField is the form field carrying the session's CSRF token.
const CSRFField = "csrf"

// session is a signed-in console user: the engine's principal for the
// cookie's token.
type session struct {
	c      *Console
	p      *engine.Principal
	caller authz.Caller
	// CSRF is the token every form of the session carries.
	CSRF string
}

// Account is the name the session is signed in as.
func (s *session) Account() string { return s.p.Account }

// Can reports whether the session's roles grant verb on resource: the
// engine's Authorize, which the API applies too. Pages use it to leave
// out what the session may not do; handlers check it again.
func (s *session) Can(resource, verb string) bool {
	return s.c.Engine.Authorize(s.p, resource, verb, nil) == nil
}

// csrfToken is the CSRF token of the engine token with id jti: an HMAC
// of the id under the console's secret. It is bound to the session (a
// token of another session does not match) and the server can
// recompute it, so nothing is stored.
func (c *Console) csrfToken(jti string) string {
	m := hmac.New(sha256.New, c.Secret)
	m.Write([]byte("gatehouse console csrf\x00" + jti))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// sessionOf verifies the session cookie of r and authorizes verb on
// resource ("": a session only) as the API authenticates its requests
// (Deps.Authenticate). Only the cookie counts: an Authorization header is
// ignored, so the API's bearer tokens cannot drive the console. It
// returns the session whenever the cookie holds a valid token, and then
// as error the refusal of authorization, if any; without a session, why.
func (c *Console) sessionOf(r *http.Request, resource, verb string) (*session, error) {
	ck, err := r.Cookie(CookieName)
	if err != nil || ck.Value == "" {
		return nil, apierror.NoAuthHeader.WithDetail("not signed in")
	}
	p, err := c.Authenticate(r, ck.Value, resource, verb)
	if p == nil {
		return nil, err
	}
	if p.JTI == "" {
		return nil, apierror.Unauthorized.WithDetail("token has no id")
	}
	return &session{c: c, p: p, caller: c.Caller(r, p), CSRF: c.csrfToken(p.JTI)}, err
}

// sameOrigin reports whether a state-changing request comes from the
// console's own pages: Sec-Fetch-Site, when the browser sends it, must
// say same-origin, and Origin, when it names one, must be this host (the
// pages' no-referrer policy makes browsers send "null" for their own
// forms). This guards the sign-in form, which has no session yet, and
// backs the CSRF token.
func sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	site := r.Header.Get("Sec-Fetch-Site")
	return site == "" || site == "same-origin" || site == "none"
}

// parseForm reads a form body of at most maxForm bytes.
func parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errTooLarge
		}
		return errForm
	}
	return nil
}

// errTooLarge answers a form over maxForm, as the API a body over MaxBody.
var errTooLarge = apierror.TooLarge.Detailf("the form exceeds %d bytes", maxForm)

// errCSRF answers a state change without the session's CSRF token.
var errCSRF = apierror.Forbidden.WithDetail("the form is stale or not from this console: reload the page and try again")

// guard wraps h so it runs only for a signed-in session whose roles grant
// verb on resource ("" needs a session only). A page without a session
// sends the browser to the sign-in page; a change without one, or without
// the session's CSRF token, is refused.
func (c *Console) guard(resource, verb string, h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := c.sessionOf(r, resource, verb)
		change := r.Method == http.MethodPost
		if s == nil {
			if !change {
				http.Redirect(w, r, Prefix+"login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.render(w, r, "login", nil, nil, err)
			return
		}
		if change {
			if err := parseForm(w, r); err != nil {
				c.render(w, r, "error", s, nil, err)
				return
			}
			if !sameOrigin(r) || !hmac.Equal([]byte(r.PostForm.Get(CSRFField)), []byte(s.CSRF)) {
				c.render(w, r, "error", s, nil, errCSRF)
				return
			}
		}
		if err != nil {
			c.render(w, r, "error", s, nil, err)
			return
		}
		h(w, r, s)
	}
}

// loginPage shows the sign-in form, or the overview to a signed-in user.
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if s, _ := c.sessionOf(r, "", ""); s != nil {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	c.render(w, r, "login", nil, loginData{Next: safeNext(r.URL.Query().Get("next"))}, nil)
}

// loginData is what the sign-in page shows.
type loginData struct {
	Name, Next string
}

// safeNext returns next when it is a console path, else the overview: the
// sign-in form never sends the browser elsewhere.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, Prefix+"login") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix
	}
	return next
}

// login signs in through the engine's Login, so the lockout, the
// rate limit and the audit of the API's POST /v4/token apply, and puts
// the token into the session cookie.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	ip := c.Caller(r, nil).IP
	if err := parseForm(w, r); err != nil {
		c.render(w, r, "login", nil, loginData{}, err)
		return
	}
	data := loginData{Name: r.PostForm.Get("name"), Next: safeNext(r.PostForm.Get("next"))}
	if !sameOrigin(r) {
		c.render(w, r, "login", nil, data, errCSRF)
		return
	}
	if c.Allow != nil && !c.Allow(ip) {
		c.render(w, r, "login", nil, data, apierror.TooManyRequests)
		return
	}
	tok, err := c.Engine.Login(r.Context(), engine.LoginRequest{Name: data.Name, Password: r.PostForm.Get("password")}, ip)
	if err != nil {
		c.render(w, r, "login", nil, data, err)
		return
	}
	http.SetCookie(w, c.cookie(r, tok))
	http.Redirect(w, r, data.Next, http.StatusSeeOther)
}

// cookie is the session cookie holding tok ("" clears it): HttpOnly,
// SameSite=Strict, Secure when r came over https (the listener's TLS, or
// a trusted proxy's X-Forwarded-Proto: wire.Proxies.Scheme), for the
// console's paths only, and gone when the browser closes.
func (c *Console) cookie(r *http.Request, tok string) *http.Cookie {
	ck := &http.Cookie{Name: CookieName, Value: tok, Path: Prefix, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: c.Proxies.Scheme(r) == "https"}
	if tok == "" {
		ck.MaxAge = -1
	}
	return ck
}

// logout revokes the session's token with the engine's Logout, as DELETE
// /v4/token does, and clears the cookie.
func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	if err := c.Engine.Logout(r.Context(), s.p, s.caller.IP); err != nil {
		c.render(w, r, "error", s, nil, err)
		return
	}
	http.SetCookie(w, c.cookie(r, ""))
	redirect(w, r, Prefix+"login", "signed-out")
}
