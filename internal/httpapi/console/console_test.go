package console_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpapi/console"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/servertest"
)

const rootPW = servertest.RootPassword

// page is a console answer with its body read.
type page struct {
	status int
	header http.Header
	body   string
}

// noFollow is a client that shows redirects instead of following them,
// and keeps no cookies: each test says which cookie it sends.
var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// fetch sends a request to the console; form, when not nil, is sent as an
// HTML form; cookie, when not empty, as the session cookie; headers are
// name, value pairs.
func fetch(t *testing.T, ts *servertest.Server, method, path, cookie string, form url.Values, headers ...string) page {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, ts.Base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: console.CookieName, Value: cookie})
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// sessionCookie returns the session cookie a sign-in answer sets.
func sessionCookie(p page) *http.Cookie {
	for _, c := range (&http.Response{Header: p.header}).Cookies() {
		if c.Name == console.CookieName {
			return c
		}
	}
	return nil
}

// cookieAttrs describes c by the attributes the tests check, never by its
// value, which is a token.
func cookieAttrs(c *http.Cookie) string {
	if c == nil {
		return "no session cookie"
	}
	return fmt.Sprintf("session cookie (value set: %t) Path=%q HttpOnly=%t Secure=%t SameSite=%v MaxAge=%d Expires=%v",
		c.Value != "", c.Path, c.HttpOnly, c.Secure, c.SameSite, c.MaxAge, c.Expires)
}

// answer describes p for a failure message: its status, Location and the
// attributes of its session cookie, not the cookie's value.
func (p page) answer() string {
	return fmt.Sprintf("%d, Location %q, %s", p.status, p.header.Get("Location"), cookieAttrs(sessionCookie(p)))
}

// hiddenValues are the values in pages that are tokens or secrets: the
// session's CSRF token and an app secret shown once.
var hiddenValues = regexp.MustCompile(`(name="csrf" value="|class="secret" readonly value=")[^"]*"`)

// text is p's body for a failure message, with the values of
// hiddenValues left out.
func (p page) text() string { return hiddenValues.ReplaceAllString(p.body, `${1}(hidden)"`) }

// signIn signs in through the console's form and returns the session
// cookie's value.
func signIn(t *testing.T, ts *servertest.Server, name, pw string) string {
	t.Helper()
	p := fetch(t, ts, "POST", "/console/login", "", url.Values{"name": {name}, "password": {pw}})
	c := sessionCookie(p)
	if p.status != http.StatusSeeOther || c == nil || c.Value == "" {
		t.Fatalf("sign in as %s: %s: %s", name, p.answer(), p.text())
	}
	return c.Value
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token the pages of the session carry.
func csrf(t *testing.T, ts *servertest.Server, cookie string) string {
	t.Helper()
	p := fetch(t, ts, "GET", "/console/", cookie, nil)
	m := csrfField.FindStringSubmatch(p.body)
	if p.status != 200 || m == nil {
		t.Fatalf("overview: %d, no CSRF token in %s", p.status, p.text())
	}
	return m[1]
}

// keyCount returns the number of keys in the ring, through the API.
func keyCount(t *testing.T, ts *servertest.Server) int {
	t.Helper()
	r := ts.Call("GET", "/v4/keys", ts.Root(), nil)
	var out struct{ Total int }
	r.JSON(t, &out)
	return out.Total
}

// TestSecurityHeaders: every kind of console answer (sign-in page, page,
// refused change, unknown page, static file) forbids framing, inline
// script and style, referrers and sniffing, and pages carry no inline
// script or style.
func TestSecurityHeaders(t *testing.T) {
	ts := servertest.Start(t, nil)
	cookie := signIn(t, ts, "root", rootPW)
	for _, tc := range []struct {
		name   string
		method string
		path   string
		cookie string
		status int
	}{
		{"sign-in page", "GET", "/console/login", "", 200},
		{"overview", "GET", "/console/", cookie, 200},
		{"accounts", "GET", "/console/accounts", cookie, 200},
		{"roles", "GET", "/console/roles", cookie, 200},
		{"apps", "GET", "/console/apps", cookie, 200},
		{"channels", "GET", "/console/channels", cookie, 200},
		{"sessions", "GET", "/console/sessions", cookie, 200},
		{"keys", "GET", "/console/keys", cookie, 200},
		{"audit", "GET", "/console/audit", cookie, 200},
		{"refused change", "POST", "/console/keys/rotate", cookie, 403},
		{"unknown page", "GET", "/console/nope", cookie, 404},
		{"not signed in", "GET", "/console/accounts", "", 303},
		{"script", "GET", "/console/static/console.js", "", 200},
		{"no directory listing", "GET", "/console/static/", "", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var form url.Values
			if tc.method == "POST" {
				form = url.Values{}
			}
			p := fetch(t, ts, tc.method, tc.path, tc.cookie, form)
			if p.status != tc.status {
				t.Fatalf("status %d, want %d: %s", p.status, tc.status, p.text())
			}
			csp := p.header.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
				}
			}
			if strings.Contains(csp, "unsafe-inline") {
				t.Errorf("Content-Security-Policy allows inline code: %q", csp)
			}
			for h, want := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"} {
				if got := p.header.Get(h); got != want {
					t.Errorf("%s: %q, want %q", h, got, want)
				}
			}
			if strings.HasPrefix(p.header.Get("Content-Type"), "text/html") {
				if p.header.Get("Cache-Control") != "no-store" {
					t.Errorf("Cache-Control %q, want no-store", p.header.Get("Cache-Control"))
				}
				if regexp.MustCompile(`<script(\s[^>]*)?>[^<]`).MatchString(p.body) || strings.Contains(p.body, "<style") ||
					regexp.MustCompile(`\sstyle=|\son[a-z]+=`).MatchString(p.body) {
					t.Errorf("inline script or style in %s", p.text())
				}
			}
		})
	}
}

// TestSessionCookie: signing in sets the engine token in an HttpOnly,
// SameSite=Strict cookie for /console/ only, not Secure over plain HTTP,
// and no long-lived cookie.
func TestSessionCookie(t *testing.T) {
	ts := servertest.Start(t, nil)
	p := fetch(t, ts, "POST", "/console/login", "", url.Values{"name": {"root"}, "password": {rootPW}, "next": {"/console/keys"}})
	c := sessionCookie(p)
	if p.status != http.StatusSeeOther || c == nil {
		t.Fatalf("sign in: %s", p.answer())
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/console/" || c.Secure || c.MaxAge != 0 || !c.Expires.IsZero() {
		t.Errorf("%s", cookieAttrs(c))
	}
	if loc := p.header.Get("Location"); loc != "/console/keys" {
		t.Errorf("after sign-in to %q, want /console/keys", loc)
	}
	// The next page is a console page, never another site.
	p = fetch(t, ts, "POST", "/console/login", "", url.Values{"name": {"root"}, "password": {rootPW}, "next": {"//evil.example/"}})
	if loc := p.header.Get("Location"); loc != "/console/" {
		t.Errorf("after sign-in with a foreign next page to %q, want /console/", loc)
	}
	// A wrong password sets no cookie and says why, without the password.
	p = fetch(t, ts, "POST", "/console/login", "", url.Values{"name": {"root"}, "password": {"Wrong-Passw0rd!"}})
	if p.status != http.StatusUnauthorized || sessionCookie(p) != nil || strings.Contains(p.body, "Wrong-Passw0rd!") {
		t.Errorf("wrong password: %s: %s", p.answer(), p.text())
	}
}

// TestCSRF: a change needs the session's CSRF token: none, another
// session's, or one sent from another origin is refused and changes
// nothing; the right one works.
func TestCSRF(t *testing.T) {
	ts := servertest.Start(t, nil)
	cookie := signIn(t, ts, "root", rootPW)
	other := signIn(t, ts, "root", rootPW)
	token, otherToken := csrf(t, ts, cookie), csrf(t, ts, other)
	if token == otherToken {
		t.Fatal("two sessions share a CSRF token")
	}
	before := keyCount(t, ts)
	for _, tc := range []struct {
		name    string
		form    url.Values
		headers []string
	}{
		{"no token", url.Values{}, nil},
		{"empty token", url.Values{"csrf": {""}}, nil},
		{"another session's token", url.Values{"csrf": {otherToken}}, nil},
		{"another origin", url.Values{"csrf": {token}}, []string{"Origin", "http://evil.example"}},
		{"cross-site fetch", url.Values{"csrf": {token}}, []string{"Sec-Fetch-Site", "cross-site"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := fetch(t, ts, "POST", "/console/keys/rotate", cookie, tc.form, tc.headers...)
			if p.status != http.StatusForbidden {
				t.Fatalf("%d %s", p.status, p.text())
			}
		})
	}
	if n := keyCount(t, ts); n != before {
		t.Fatalf("refused rotations rotated: %d keys, had %d", n, before)
	}
	p := fetch(t, ts, "POST", "/console/keys/rotate", cookie, url.Values{"csrf": {token}}, "Origin", ts.Base)
	if p.status != http.StatusSeeOther {
		t.Fatalf("rotation with the token: %d %s", p.status, p.text())
	}
	if n := keyCount(t, ts); n != before+1 {
		t.Fatalf("rotation: %d keys, had %d", n, before)
	}
	// The sign-in form, which has no session yet, refuses another origin.
	p = fetch(t, ts, "POST", "/console/login", "", url.Values{"name": {"root"}, "password": {rootPW}}, "Origin", "http://evil.example")
	if p.status != http.StatusForbidden || sessionCookie(p) != nil {
		t.Fatalf("sign-in from another origin: %s", p.answer())
	}
}

// TestCookieRefusedByAPI: the JSON API reads the Authorization header
// only: the console's cookie, which holds a valid engine token, does not
// authenticate an API request.
func TestCookieRefusedByAPI(t *testing.T) {
	ts := servertest.Start(t, nil)
	cookie := signIn(t, ts, "root", rootPW)
	r := ts.Call("GET", "/v4/accounts", "", nil, "Cookie", console.CookieName+"="+cookie)
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("API with the console cookie: %d %s", r.Status, r.Body)
	}
	r = ts.Call("POST", "/v4/keys/rotate", "", nil, "Cookie", console.CookieName+"="+cookie)
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("API change with the console cookie: %d %s", r.Status, r.Body)
	}
	if r := ts.Call("GET", "/v4/accounts", cookie, nil); r.Status != http.StatusOK {
		t.Fatalf("the same token as a bearer: %d %s", r.Status, r.Body)
	}
}

// TestBearerCannotDriveConsole: the console reads its cookie only: the
// API's bearer token neither opens a page nor drives a form, even with a
// CSRF token of a session of the same account.
func TestBearerCannotDriveConsole(t *testing.T) {
	ts := servertest.Start(t, nil)
	bearer := ts.Root()
	p := fetch(t, ts, "GET", "/console/accounts", "", nil, "Authorization", "Bearer "+bearer)
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/console/login") {
		t.Fatalf("page with a bearer token: %s", p.answer())
	}
	token := csrf(t, ts, signIn(t, ts, "root", rootPW))
	form := url.Values{"csrf": {token}, "name": {"mallory"}, "password": {"Mallory-Passw0rd!"}, "roles": {"admin"}}
	p = fetch(t, ts, "POST", "/console/accounts", "", form, "Authorization", "Bearer "+bearer)
	if p.status != http.StatusUnauthorized {
		t.Fatalf("form with a bearer token: %d %s", p.status, p.text())
	}
	if r := ts.Call("GET", "/v4/accounts/mallory", bearer, nil); r.Status != http.StatusBadRequest {
		t.Fatalf("the refused form created the account: %d %s", r.Status, r.Body)
	}
}

// TestSignOutRevokes: signing out revokes the session's token with the
// engine (the API refuses it too) and clears the cookie.
func TestSignOutRevokes(t *testing.T) {
	ts := servertest.Start(t, nil)
	cookie := signIn(t, ts, "root", rootPW)
	p := fetch(t, ts, "POST", "/console/logout", cookie, url.Values{"csrf": {csrf(t, ts, cookie)}})
	if c := sessionCookie(p); p.status != http.StatusSeeOther || c == nil || c.Value != "" || c.MaxAge >= 0 {
		t.Fatalf("sign out: %s", p.answer())
	}
	if p := fetch(t, ts, "GET", "/console/", cookie, nil); p.status != http.StatusSeeOther {
		t.Fatalf("page after sign-out: %d", p.status)
	}
	if r := ts.Call("GET", "/v4/accounts", cookie, nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("API with the signed-out token: %d %s", r.Status, r.Body)
	}
}

// TestSignInLockout: the console signs in through the engine's login, so
// its lockout applies: after the allowed failures even the right password
// is refused.
func TestSignInLockout(t *testing.T) {
	ts := servertest.Start(t, nil)
	for range 3 {
		p := fetch(t, ts, "POST", "/console/login", "", url.Values{"name": {"root"}, "password": {"Wrong-Passw0rd!"}})
		if p.status != http.StatusUnauthorized {
			t.Fatalf("wrong password: %d", p.status)
		}
	}
	p := fetch(t, ts, "POST", "/console/login", "", url.Values{"name": {"root"}, "password": {rootPW}})
	if sessionCookie(p) != nil || !strings.Contains(p.body, "class=\"error\"") {
		t.Fatalf("sign-in while locked out: %s: %s", p.answer(), p.text())
	}
}

// TestPagesFollowRoles: a developer (no account, role, app... permission)
// sees none of those pages in the navigation and is refused them.
func TestPagesFollowRoles(t *testing.T) {
	ts := servertest.Start(t, nil)
	r := ts.Call("POST", "/v4/accounts", ts.Root(), map[string]any{"name": "dev", "password": "Dev-Passw0rd!", "roles": []string{"developer"}})
	if r.Status != 200 {
		t.Fatalf("create dev: %d %s", r.Status, r.Body)
	}
	cookie := signIn(t, ts, "dev", "Dev-Passw0rd!")
	home := fetch(t, ts, "GET", "/console/", cookie, nil)
	for _, path := range []string{"/console/accounts", "/console/roles", "/console/apps", "/console/channels", "/console/sessions", "/console/keys", "/console/audit"} {
		if strings.Contains(home.body, `href="`+path+`"`) {
			t.Errorf("the developer's navigation links %s", path)
		}
		if p := fetch(t, ts, "GET", path, cookie, nil); p.status != http.StatusForbidden {
			t.Errorf("developer GET %s: %d", path, p.status)
		}
	}
	token := csrf(t, ts, cookie)
	if p := fetch(t, ts, "POST", "/console/keys/rotate", cookie, url.Values{"csrf": {token}}); p.status != http.StatusForbidden {
		t.Errorf("developer rotates a key: %d", p.status)
	}
}

// post sends a form of the session, with its CSRF token, and checks that
// it answered status.
func post(t *testing.T, ts *servertest.Server, cookie, token, path string, status int, form url.Values) page {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", token)
	p := fetch(t, ts, "POST", path, cookie, form)
	if p.status != status {
		t.Fatalf("POST %s: %d, want %d: %s", path, p.status, status, p.text())
	}
	return p
}

// apiJSON calls the API as root and decodes the answer into v.
func apiJSON(t *testing.T, ts *servertest.Server, path string, v any) {
	t.Helper()
	r := ts.Call("GET", path, ts.Root(), nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, r.Status, r.Body)
	}
	r.JSON(t, v)
}

// TestAccountForms: create, update, reset the password of and delete an
// account; see and clear its locks; a refused change shows the engine's
// error on the page.
func TestAccountForms(t *testing.T) {
	ts := servertest.Start(t, nil)
	cookie := signIn(t, ts, "root", rootPW)
	token := csrf(t, ts, cookie)
	post(t, ts, cookie, token, "/console/accounts", http.StatusSeeOther,
		url.Values{"name": {"bob"}, "password": {"Bob-Passw0rd!"}, "roles": {"developer"}, "status": {"active"}})
	p := post(t, ts, cookie, token, "/console/accounts", http.StatusConflict,
		url.Values{"name": {"bob"}, "password": {"Bob-Passw0rd!"}, "roles": {"developer"}})
	if !strings.Contains(p.body, `class="error"`) || strings.Contains(p.body, "Bob-Passw0rd!") {
		t.Fatalf("duplicate account: %s", p.text())
	}
	post(t, ts, cookie, token, "/console/accounts/bob", http.StatusBadRequest, url.Values{"status": {"inactive"}}) // no role
	post(t, ts, cookie, token, "/console/accounts/bob", http.StatusSeeOther, url.Values{"roles": {"admin", "developer"}, "status": {"inactive"}})
	var bob struct {
		Roles  []string
		Status string
	}
	apiJSON(t, ts, "/v4/accounts/bob", &bob)
	if len(bob.Roles) != 2 || bob.Status != "inactive" {
		t.Fatalf("after the update: %+v", bob)
	}
	post(t, ts, cookie, token, "/console/accounts/bob", http.StatusSeeOther, url.Values{"roles": {"developer"}, "status": {"active"}})
	post(t, ts, cookie, token, "/console/accounts/bob/password", http.StatusSeeOther, url.Values{"password": {"Bob-Passw0rd-2!"}})
	signIn(t, ts, "bob", "Bob-Passw0rd-2!")
	// root's own password needs the current one.
	post(t, ts, cookie, token, "/console/accounts/root/password", http.StatusBadRequest, url.Values{"password": {"Root-Passw0rd-2!"}})

	fetch(t, ts, "POST", "/console/login", "", url.Values{"name": {"bob"}, "password": {"Wrong-Passw0rd!"}})
	if p := fetch(t, ts, "GET", "/console/accounts", cookie, nil); !strings.Contains(p.body, "bob::") {
		t.Fatalf("the accounts page shows no lock of bob: %s", p.text())
	}
	post(t, ts, cookie, token, "/console/locks/clear", http.StatusSeeOther, url.Values{"name": {"bob"}})
	if p := fetch(t, ts, "GET", "/console/accounts?ok=cleared", cookie, nil); strings.Contains(p.body, "bob::") || !strings.Contains(p.body, "Locks cleared.") {
		t.Fatalf("the lock of bob is still shown: %s", p.text())
	}
	if p := fetch(t, ts, "GET", "/console/accounts?q=BO", cookie, nil); !strings.Contains(p.body, ">bob</a>") || strings.Contains(p.body, ">root</a>") {
		t.Fatalf("search for BO: %s", p.text())
	}
	post(t, ts, cookie, token, "/console/accounts/bob/delete", http.StatusSeeOther, nil)
	if r := ts.Call("GET", "/v4/accounts/bob", ts.Root(), nil); r.Status != http.StatusBadRequest {
		t.Fatalf("bob after deletion: %d", r.Status)
	}
}

// TestRoleForms: the permission grid creates and edits a role; a role
// with labels, which the grid cannot show, is not edited through it.
func TestRoleForms(t *testing.T) {
	ts := servertest.Start(t, nil)
	cookie := signIn(t, ts, "root", rootPW)
	token := csrf(t, ts, cookie)
	post(t, ts, cookie, token, "/console/roles", http.StatusSeeOther,
		url.Values{"name": {"viewer"}, "verbs.app": {"get"}, "verbs.channel": {"get"}, "verbs.key": {"get", "create"}})
	type perm struct {
		Resources []struct {
			Type   string
			Labels map[string]string
		}
		Verbs []string
	}
	var role struct{ Perms []perm }
	apiJSON(t, ts, "/v4/roles/viewer", &role)
	if len(role.Perms) != 2 || len(role.Perms[0].Resources) != 2 || role.Perms[0].Resources[0].Type != "app" ||
		role.Perms[1].Resources[0].Type != "key" || strings.Join(role.Perms[1].Verbs, ",") != "get,create" {
		t.Fatalf("viewer: %+v", role.Perms)
	}
	post(t, ts, cookie, token, "/console/roles/viewer", http.StatusSeeOther, url.Values{"verbs.audit": {"*"}})
	apiJSON(t, ts, "/v4/roles/viewer", &role)
	if len(role.Perms) != 1 || role.Perms[0].Resources[0].Type != "audit" || role.Perms[0].Verbs[0] != "*" {
		t.Fatalf("viewer after the edit: %+v", role.Perms)
	}
	post(t, ts, cookie, token, "/console/roles", http.StatusBadRequest, url.Values{"name": {"bad"}, "verbs.app": {"fly"}})

	r := ts.Call("POST", "/v4/roles", ts.Root(), map[string]any{"name": "labeled", "perms": []map[string]any{
		{"resources": []map[string]any{{"type": "service", "labels": map[string]string{"appId": "a"}}}, "verbs": []string{"get"}}}})
	if r.Status != http.StatusOK {
		t.Fatalf("labeled role: %d %s", r.Status, r.Body)
	}
	if p := fetch(t, ts, "GET", "/console/roles/labeled", cookie, nil); !strings.Contains(p.body, "edit it through the API") {
		t.Fatalf("the labeled role's page: %s", p.text())
	}
	post(t, ts, cookie, token, "/console/roles/labeled", http.StatusBadRequest, url.Values{"verbs.service": {"get"}})
	apiJSON(t, ts, "/v4/roles/labeled", &role)
	if role.Perms[0].Resources[0].Labels["appId"] != "a" {
		t.Fatalf("the labels were lost: %+v", role.Perms)
	}
	post(t, ts, cookie, token, "/console/roles/viewer/delete", http.StatusSeeOther, nil)
}

var secretField = regexp.MustCompile(`id="secret" class="secret" readonly value="([^"]+)"`)

// TestAppAndSessionForms: a secret rotated with a grace period is shown
// once and the old one keeps working meanwhile; a channel is edited; every
// session of a user ends at once; an app is deactivated.
func TestAppAndSessionForms(t *testing.T) {
	ts := servertest.Start(t, nil)
	cookie := signIn(t, ts, "root", rootPW)
	token := csrf(t, ts, cookie)
	p := post(t, ts, cookie, token, "/console/apps", http.StatusOK, url.Values{"name": {"crm"}})
	m := secretField.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no secret on %s", p.text())
	}
	oldSecret := m[1]
	var apps struct {
		Data []struct{ AppKey, Status string }
	}
	apiJSON(t, ts, "/v4/apps", &apps)
	key := apps.Data[0].AppKey
	p = post(t, ts, cookie, token, "/console/apps/"+key+"/secret", http.StatusOK, url.Values{"graceSeconds": {"600"}})
	m = secretField.FindStringSubmatch(p.body)
	if m == nil || m[1] == oldSecret {
		t.Fatalf("no new secret on %s", p.text())
	}
	access := func(secret string) string {
		r := ts.Call("POST", "/apigovernance/api/oauth/tokenByAkSk", "", map[string]string{"app_key": key, "app_secret": secret})
		var out struct{ AccessToken string }
		r.JSON(t, &out)
		if r.Status != http.StatusOK {
			t.Fatalf("tokenByAkSk: %d %s", r.Status, r.Body)
		}
		if out.AccessToken == "" {
			t.Fatal("tokenByAkSk: no access token")
		}
		return out.AccessToken
	}
	access(oldSecret)
	at := access(m[1])
	if p := fetch(t, ts, "GET", "/console/apps", cookie, nil); strings.Contains(p.body, m[1]) || strings.Contains(p.body, oldSecret) {
		t.Fatal("the apps page shows a secret")
	}

	for _, id := range []string{"1", "2"} {
		post(t, ts, cookie, token, "/console/channels", http.StatusSeeOther, url.Values{"id": {id}, "name": {"chan " + id}, "appKeys": {key}})
	}
	post(t, ts, cookie, token, "/console/channels/2", http.StatusSeeOther, url.Values{"name": {"renamed"}, "appKeys": {key + ", "}, "sessionIdleTimeout": {"5m"}})
	var ch struct{ Name, SessionIdleTimeout string }
	apiJSON(t, ts, "/v4/channels/2", &ch)
	if ch.Name != "renamed" || ch.SessionIdleTimeout != "5m" {
		t.Fatalf("channel 2: %+v", ch)
	}
	for _, id := range []string{"1", "2"} {
		r := ts.Call("POST", "/apiaccess/ccmessaging/applyToken", "", map[string]string{"userId": "u-7", "userName": "Ada",
			"channelId": id, "locale": "en_US"}, "x-app-key", key, "Authorization", "Bearer "+at)
		if r.Status != http.StatusOK {
			t.Fatalf("applyToken: %d %s", r.Status, r.Body)
		}
	}
	if p := fetch(t, ts, "GET", "/console/sessions?channel=2", cookie, nil); strings.Count(p.body, "<td><code>2</code></td>") != 1 || strings.Contains(p.body, "<td><code>1</code></td>") {
		t.Fatalf("sessions of channel 2: %s", p.text())
	}
	p = post(t, ts, cookie, token, "/console/sessions/end-all", http.StatusSeeOther, url.Values{"user": {"u-7"}, "quser": {"u-7"}})
	if loc := p.header.Get("Location"); loc != "/console/sessions?user=u-7&ok=ended-all" {
		t.Fatalf("after ending: %s", loc)
	}
	var live struct{ Total int }
	apiJSON(t, ts, "/v4/ccmessaging-sessions", &live)
	if live.Total != 0 {
		t.Fatalf("%d sessions live after ending every one", live.Total)
	}

	post(t, ts, cookie, token, "/console/apps/"+key+"/status", http.StatusSeeOther, url.Values{"status": {"inactive"}})
	apiJSON(t, ts, "/v4/apps", &apps)
	if apps.Data[0].Status != "inactive" {
		t.Fatalf("app after deactivation: %+v", apps.Data[0])
	}
}

// TestAuditPage: the filters narrow the records, pages of 50 link to each
// other, and the live tail answers only newer records.
func TestAuditPage(t *testing.T) {
	ts := servertest.Start(t, nil)
	cookie := signIn(t, ts, "root", rootPW)
	for range 3 {
		fetch(t, ts, "POST", "/console/login", "", url.Values{"name": {"nobody"}, "password": {"Wrong-Passw0rd!"}})
	}
	token := csrf(t, ts, cookie)
	for i := range 55 {
		post(t, ts, cookie, token, "/console/roles", http.StatusSeeOther, url.Values{"name": {"r" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + string(rune('a'+i/26))}, "verbs.app": {"get"}})
	}
	p := fetch(t, ts, "GET", "/console/audit?outcome=failure", cookie, nil)
	if p.status != 200 || !strings.Contains(p.body, "badge failure") || strings.Contains(p.body, "badge success") {
		t.Fatalf("failures only: %s", p.text())
	}
	p = fetch(t, ts, "GET", "/console/audit?action=role.&actor=root", cookie, nil)
	if n := strings.Count(p.body, "<td>role.create</td>"); n != 50 || !strings.Contains(p.body, `rel="next"`) || strings.Contains(p.body, `rel="prev"`) {
		t.Fatalf("first page: %d role.create rows: %s", n, p.text())
	}
	p = fetch(t, ts, "GET", "/console/audit?action=role.&actor=root&page=2", cookie, nil)
	if n := strings.Count(p.body, "<td>role.create</td>"); n != 5 || strings.Contains(p.body, `rel="next"`) || !strings.Contains(p.body, `rel="prev"`) {
		t.Fatalf("second page: %d role.create rows", n)
	}
	if p := fetch(t, ts, "GET", "/console/audit?from=yesterday", cookie, nil); p.status != http.StatusBadRequest {
		t.Fatalf("a bad time: %d", p.status)
	}
	p = fetch(t, ts, "GET", "/console/audit/tail?after=2000-01-01T00:00:00Z", cookie, nil)
	if p.status != 200 || !strings.Contains(p.body, `"action":"role.create"`) {
		t.Fatalf("tail: %d %s", p.status, p.text())
	}
	p = fetch(t, ts, "GET", "/console/audit/tail?after=2999-01-01T00:00:00Z", cookie, nil)
	if p.status != 200 || strings.TrimSpace(p.body) != "[]" {
		t.Fatalf("tail of the future: %d %s", p.status, p.text())
	}
}

// TestOverviewData: the charts' data is JSON of this server's metrics,
// for a session only; a refused console sign-in counts as one.
func TestOverviewData(t *testing.T) {
	ts := servertest.Start(t, nil)
	cookie := signIn(t, ts, "root", rootPW)
	if p := fetch(t, ts, "GET", "/console/overview/data", "", nil); p.status != http.StatusSeeOther {
		t.Fatalf("without a session: %d", p.status)
	}
	p := fetch(t, ts, "GET", "/console/overview/data", cookie, nil)
	for _, want := range []string{`"Sign-ins"`, `"Refused sign-ins"`, `"Live sessions"`, `"Locks"`, `"p99 latency"`} {
		if p.status != 200 || !strings.Contains(p.body, want) {
			t.Fatalf("charts lack %s: %d %s", want, p.status, p.text())
		}
	}
	fetch(t, ts, "POST", "/console/login", "", url.Values{"name": {"root"}, "password": {"Wrong-Passw0rd!"}})
	m := servertest.SendOutside(t, "GET", ts.Base+"/metrics", "", nil)
	if !strings.Contains(string(m.Body), `gatehouse_http_requests_total{method="POST",route="POST /console/login",status="401"}`) {
		t.Fatalf("the refused sign-in is not counted by route: %s", m.Body)
	}
}

var loginSeries = regexp.MustCompile(`^gatehouse_logins_total\{result="([a-z_]+)"\} (\S+)$`)

// logins reads gatehouse_logins_total from the server's /metrics, by
// result, failing the test unless its series are exactly one per
// metrics.LoginResults, labelled by result alone.
func logins(t *testing.T, ts *servertest.Server) map[string]float64 {
	t.Helper()
	m := servertest.SendOutside(t, "GET", ts.Base+"/metrics", "", nil)
	out := map[string]float64{}
	for _, line := range strings.Split(string(m.Body), "\n") {
		if !strings.HasPrefix(line, "gatehouse_logins_total") {
			continue
		}
		s := loginSeries.FindStringSubmatch(line)
		if s == nil {
			t.Fatalf("a series of other labels: %s", line)
		}
		v, err := strconv.ParseFloat(s[2], 64)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		out[s[1]] = v
	}
	for _, r := range metrics.LoginResults {
		if _, ok := out[r]; !ok {
			t.Fatalf("no series of result %s: %v", r, out)
		}
	}
	if len(out) != len(metrics.LoginResults) {
		t.Fatalf("results %v, want %v", out, metrics.LoginResults)
	}
	return out
}

// TestLoginsCounted: every engine login, through the API or the
// console's sign-in, moves the series of its result in
// gatehouse_logins_total and no other: ok, wrong_credentials (a wrong
// password or an unknown name), locked (an attempt of a banned
// name::client key, even with the right password), inactive and invalid
// (a malformed lifetime). A sign-in refused before the engine (another
// origin, a malformed body) is no login.
func TestLoginsCounted(t *testing.T) {
	ts := servertest.Start(t, nil)
	root := ts.Root()
	for _, a := range []map[string]any{
		{"name": "carol", "password": "Carol-Passw0rd!", "roles": []string{"developer"}},
		{"name": "dave", "password": "Dave-Passw0rd!", "roles": []string{"developer"}, "status": "inactive"},
	} {
		if r := ts.Call("POST", "/v4/accounts", root, a); r.Status != http.StatusOK {
			t.Fatalf("create %s: %d %s", a["name"], r.Status, r.Body)
		}
	}
	// api and form log in through the API and the console; the answer is
	// not shown, as it may hold a token.
	api := func(status int, body any) {
		t.Helper()
		if r := ts.Call("POST", "/v4/token", "", body); r.Status != status {
			t.Fatalf("POST /v4/token: %d, want %d", r.Status, status)
		}
	}
	form := func(status int, name, pw string, headers ...string) {
		t.Helper()
		if p := fetch(t, ts, "POST", "/console/login", "", url.Values{"name": {name}, "password": {pw}}, headers...); p.status != status {
			t.Fatalf("console sign-in: %s, want %d", p.answer(), status)
		}
	}
	creds := func(name, pw string) map[string]string { return map[string]string{"name": name, "password": pw} }
	for _, step := range []struct {
		name string
		do   func()
		want map[string]float64
	}{
		{"right password", func() {
			api(http.StatusOK, creds("carol", "Carol-Passw0rd!"))
			form(http.StatusSeeOther, "carol", "Carol-Passw0rd!")
		}, map[string]float64{metrics.LoginOK: 2}},
		{"wrong password, unknown name", func() {
			api(http.StatusUnauthorized, creds("carol", "Wrong-Passw0rd!"))
			form(http.StatusUnauthorized, "nobody", "Wrong-Passw0rd!")
		}, map[string]float64{metrics.LoginWrongCredentials: 2}},
		{"inactive account", func() { api(http.StatusForbidden, creds("dave", "Dave-Passw0rd!")) },
			map[string]float64{metrics.LoginInactive: 1}},
		{"malformed lifetime", func() {
			api(http.StatusBadRequest, map[string]string{"name": "carol", "password": "Carol-Passw0rd!", "tokenExpirationTime": "1y"})
		}, map[string]float64{metrics.LoginInvalid: 1}},
		{"failures up to the ban", func() {
			api(http.StatusUnauthorized, creds("carol", "Wrong-Passw0rd!"))
			form(http.StatusUnauthorized, "carol", "Wrong-Passw0rd!")
		}, map[string]float64{metrics.LoginWrongCredentials: 2}},
		{"banned key, right password", func() {
			api(http.StatusForbidden, creds("carol", "Carol-Passw0rd!"))
			form(http.StatusForbidden, "carol", "Carol-Passw0rd!")
		}, map[string]float64{metrics.LoginLocked: 2}},
		{"refused before the engine", func() {
			form(http.StatusForbidden, "root", rootPW, "Origin", "http://evil.example")
			api(http.StatusBadRequest, "{")
		}, nil},
	} {
		before := logins(t, ts)
		step.do()
		after := logins(t, ts)
		for _, r := range metrics.LoginResults {
			if d := after[r] - before[r]; d != step.want[r] {
				t.Errorf("%s: %s moved by %v, want %v", step.name, r, d, step.want[r])
			}
		}
	}
}

// TestRefusedSignInsChart: the overview's refused sign-ins are the
// engine's refused logins, not the 4xx answers of the sign-in routes: a
// sign-in refused before the engine (another origin, a malformed body)
// is none. Between two samples there is one sign-in and two refused
// logins, so the refused rate is twice the sign-in rate.
func TestRefusedSignInsChart(t *testing.T) {
	ts := servertest.Start(t, nil)
	cookie := signIn(t, ts, "root", rootPW)
	charts := func() map[string][]*float64 {
		t.Helper()
		p := fetch(t, ts, "GET", "/console/overview/data", cookie, nil)
		var data struct {
			Charts []struct {
				Name   string
				Points []*float64
			}
		}
		if err := json.Unmarshal([]byte(p.body), &data); p.status != http.StatusOK || err != nil {
			t.Fatalf("charts: %d %v", p.status, err)
		}
		out := map[string][]*float64{}
		for _, c := range data.Charts {
			out[c.Name] = c.Points
		}
		return out
	}
	charts() // the first sample
	ts.Login("root", rootPW)
	ts.Call("POST", "/v4/token", "", map[string]string{"name": "nobody", "password": "Wrong-Passw0rd!"})
	fetch(t, ts, "POST", "/console/login", "", url.Values{"name": {"nobody"}, "password": {"Wrong-Passw0rd!"}})
	fetch(t, ts, "POST", "/console/login", "", url.Values{"name": {"root"}, "password": {rootPW}}, "Origin", "http://evil.example")
	ts.Call("POST", "/v4/token", "", "{")
	// The next sample is taken once the sampling interval has passed.
	var c map[string][]*float64
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if c = charts(); len(c["Sign-ins"]) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no second sample within 30s")
		}
	}
	in, refused := c["Sign-ins"][0], c["Refused sign-ins"][0]
	if in == nil || refused == nil {
		t.Fatalf("no rates: sign-ins %v, refused %v", in, refused)
	}
	if *in <= 0 || *refused != 2**in {
		t.Fatalf("sign-ins %v, refused %v per minute: want twice as many refused", *in, *refused)
	}
}

// TestSessionCookieSecureOverTLS: over TLS the session cookie is Secure.
func TestSessionCookieSecureOverTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cert := servertest.WriteCert(t, certFile, keyFile, 1)
	ts := servertest.Start(t, func(c *server.Config) { c.TLSCert, c.TLSKey = certFile, keyFile })
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := strings.Replace(ts.Base, "http://", "https://", 1)
	resp, err := client.PostForm(base+"/console/login", url.Values{"name": {"root"}, "password": {rootPW}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c := sessionCookie(page{header: resp.Header})
	if resp.StatusCode != http.StatusSeeOther || c == nil || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Fatalf("sign in over TLS: %d, %s", resp.StatusCode, cookieAttrs(c))
	}
}

// TestKeyForms: the rotate form pre-publishes by default, switches at
// once when asked, revokes the earlier keys only with the switch, and
// refuses a revocation without it, changing nothing.
func TestKeyForms(t *testing.T) {
	ts := servertest.Start(t, nil)
	cookie := signIn(t, ts, "root", rootPW)
	token := csrf(t, ts, cookie)
	type key struct{ ID, Status string }
	keys := func() []key {
		var out struct{ Data []key }
		apiJSON(t, ts, "/v4/keys", &out)
		return out.Data
	}
	oldToken := ts.Root()

	post(t, ts, cookie, token, "/console/keys/rotate", http.StatusSeeOther, nil)
	if k := keys(); len(k) != 2 || k[0].Status != "pending" || k[1].Status != "active" {
		t.Fatalf("after a rotation: %+v", k)
	}
	p := post(t, ts, cookie, token, "/console/keys/rotate", http.StatusBadRequest, url.Values{"revoke": {"on"}})
	if !strings.Contains(p.body, `class="error"`) || len(keys()) != 2 {
		t.Fatalf("revoke without the switch: %d keys, %s", len(keys()), p.text())
	}
	post(t, ts, cookie, token, "/console/keys/rotate", http.StatusSeeOther, url.Values{"immediate": {"on"}})
	if k := keys(); k[0].Status != "active" || k[1].Status != "retired" {
		t.Fatalf("after an immediate rotation: %+v", k)
	}
	post(t, ts, cookie, token, "/console/keys/rotate", http.StatusSeeOther, url.Values{"immediate": {"on"}, "revoke": {"on"}})
	if k := keys(); len(k) != 1 || k[0].Status != "active" {
		t.Fatalf("after a revoking rotation: %+v", k)
	}
	if r := ts.Call("GET", "/v4/accounts/root", oldToken, nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("a token of a revoked key: %d", r.Status)
	}
}

// TestSchemeFromTrustedProxy: behind a TLS-terminating proxy listed in
// the trusted proxies, X-Forwarded-Proto: https makes the session cookie
// Secure and the discovery issuer https; from any other peer the header
// is ignored.
func TestSchemeFromTrustedProxy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		proxies []string
		secure  bool
		scheme  string
	}{
		{"trusted proxy", []string{"127.0.0.1"}, true, "https"},
		{"untrusted peer", []string{"192.0.2.1"}, false, "http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := servertest.Start(t, func(c *server.Config) { c.TrustedProxies = tc.proxies })
			p := fetch(t, ts, "POST", "/console/login", "", url.Values{"name": {"root"}, "password": {rootPW}}, "X-Forwarded-Proto", "https")
			c := sessionCookie(p)
			if p.status != http.StatusSeeOther || c == nil || c.Secure != tc.secure {
				t.Fatalf("sign in: %d, a cookie: %v, want Secure %v", p.status, c != nil, tc.secure)
			}
			out := fetch(t, ts, "POST", "/console/logout", c.Value, url.Values{"csrf": {csrf(t, ts, c.Value)}}, "X-Forwarded-Proto", "https")
			if c := sessionCookie(out); c == nil || c.Secure != tc.secure {
				t.Fatalf("sign out: a cookie: %v, want Secure %v", c != nil, tc.secure)
			}
			r := ts.Call("GET", "/.well-known/openid-configuration", "", nil, "X-Forwarded-Proto", "https")
			var doc struct{ Issuer string }
			r.JSON(t, &doc)
			if want := tc.scheme + "://" + strings.TrimPrefix(ts.Base, "http://"); doc.Issuer != want {
				t.Fatalf("issuer %q, want %q", doc.Issuer, want)
			}
		})
	}
}

// TestRefusedRotationAudited: a rotation refused for revoking without
// switching at once is audited as a failure with the error, as other
// refused changes are.
func TestRefusedRotationAudited(t *testing.T) {
	ts := servertest.Start(t, nil)
	cookie := signIn(t, ts, "root", rootPW)
	post(t, ts, cookie, csrf(t, ts, cookie), "/console/keys/rotate", http.StatusBadRequest, url.Values{"revoke": {"on"}})
	var recs struct {
		Data []struct{ Actor, Action, Outcome, Detail string }
	}
	apiJSON(t, ts, "/v4/audit?limit=1000", &recs)
	for _, rec := range recs.Data {
		if rec.Action == "key.rotate" {
			if rec.Actor != "root" || rec.Outcome != "failure" || rec.Detail != "400001 Invalid parameter(s)" {
				t.Fatalf("refused rotation audited as %+v", rec)
			}
			return
		}
	}
	t.Fatalf("the refused rotation is not audited: %+v", recs.Data)
}

// TestErrorAnswers: a console page answers an error with the status and
// headers the API gives it: a refused sign-in over the rate limit 429
// with Retry-After, a form over the size limit 413, not a 400.
func TestErrorAnswers(t *testing.T) {
	ts := servertest.Start(t, func(c *server.Config) { c.RateLimit, c.RateBurst = 0.001, 1 })
	cookie := signIn(t, ts, "root", rootPW)
	p := fetch(t, ts, "POST", "/console/login", "", url.Values{"name": {"root"}, "password": {rootPW}})
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") != "1" || !strings.Contains(p.body, `class="error"`) {
		t.Fatalf("sign-in over the rate limit: %s, Retry-After %q: %s", p.answer(), p.header.Get("Retry-After"), p.text())
	}
	// A body of unknown length (chunked), which the server's declared-size
	// check cannot see, is cut at the limit as it is read.
	form := "csrf=" + url.QueryEscape(csrf(t, ts, cookie)) + "&name=" + strings.Repeat("a", 70<<10)
	req, err := http.NewRequest("POST", ts.Base+"/console/roles", io.MultiReader(strings.NewReader(form)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: console.CookieName, Value: cookie})
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "Request entity too large") {
		t.Fatalf("a form over the limit: %d %s", resp.StatusCode, page{body: string(b)}.text())
	}
}
