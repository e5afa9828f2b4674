// Package console is Gatehouse's admin console: server-rendered HTML pages
// under /console/, built into the binary with go:embed. Like the JSON API
// it decodes a request, checks the caller with the engine (Verify, then
// Authorize with the resource and verb of the operation) and calls the
// same domain functions; it holds no domain rules and no permission model
// of its own. A session is an engine token in a cookie; see docs/console.md.
package console

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/apifabric"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/ccmessaging"
	"github.com/gatehouse/gatehouse/internal/engine"
	"github.com/gatehouse/gatehouse/internal/httpapi/wire"
	"github.com/gatehouse/gatehouse/internal/keyring"
)

// Prefix is the path the console is served under.
const Prefix = "/console/"

// maxForm is the largest form body accepted, as the API's MaxBody.
const maxForm = 64 << 10

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Deps are the services the console calls: the ones the JSON API calls,
// and the API's own helpers where the API adds something to a domain call.
type Deps struct {
	Engine *engine.Engine
	// Fabric and Messaging are optional, as in the API: nil leaves out
	// the pages of apps, and of channels and sessions.
	Fabric    *apifabric.Service
	Messaging *ccmessaging.Service
	Keys      *keyring.Ring
	Audit     *audit.Log
	Logger    *slog.Logger
	// Secret keys the CSRF tokens; every replica must hold the same one.
	Secret []byte
	// Caller describes p, the identity verified for r (nil: none), for
	// domain operations, as the API does.
	Caller func(r *http.Request, p *engine.Principal) authz.Caller
	// Authenticate verifies the engine token tok of r and authorizes verb
	// on resource ("": a valid token only), as the API authenticates its
	// requests. It returns the principal whenever the token verifies,
	// with the refusal of authorization if any.
	Authenticate func(r *http.Request, tok, resource, verb string) (*engine.Principal, error)
	// Proxies are the API's trusted proxies: the scheme of a request
	// (the session cookie's Secure flag) is theirs to say.
	Proxies *wire.Proxies
	// Allow applies the API's per-client-IP rate limit of sign-ins.
	Allow func(ip string) bool
	// RotateKey rotates the key ring as o asks and audits it, as the API does.
	RotateKey func(ctx context.Context, c authz.Caller, o keyring.RotateOptions) (keyring.KeyInfo, error)
}

// Console serves the admin console.
type Console struct {
	Deps
	errs   wire.Errors
	mux    *http.ServeMux
	pages  map[string]*template.Template
	static http.Handler
	charts *sampler
}

// New builds the console.
func New(d Deps) *Console {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Console{Deps: d, errs: wire.Errors{Logger: d.Logger}, mux: http.NewServeMux(), pages: parsePages()}
	sub, _ := fs.Sub(staticFS, "static")
	c.static = http.StripPrefix(Prefix+"static/", http.FileServerFS(sub))
	c.charts = newSampler(c)
	c.routes()
	return c
}

// parsePages parses every page with the layout around it.
func parsePages() map[string]*template.Template {
	funcs := template.FuncMap{"unix": unixTime, "rfc": rfcTime, "join": strings.Join, "has": contains, "age": age}
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	names, _ := fs.Glob(templateFS, "templates/*.html")
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		pages[name] = template.Must(template.Must(layout.Clone()).ParseFS(templateFS, n))
	}
	return pages
}

// securityHeaders are sent with every answer of the console: no inline
// script or style, no framing, no referrer, no sniffing.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
		"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
	"X-Frame-Options":              "DENY",
	"Referrer-Policy":              "no-referrer",
	"X-Content-Type-Options":       "nosniff",
	"Cross-Origin-Opener-Policy":   "same-origin",
	"Cross-Origin-Resource-Policy": "same-origin",
}

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	for k, v := range securityHeaders {
		h.Set(k, v)
	}
	if strings.HasPrefix(r.URL.Path, Prefix+"static/") {
		h.Set("Cache-Control", "no-cache")
		if strings.HasSuffix(r.URL.Path, "/") { // no directory listings
			http.NotFound(w, r)
			return
		}
	} else {
		h.Set("Cache-Control", "no-store")
	}
	c.mux.ServeHTTP(w, r)
}

// view is what the layout renders.
type view struct {
	Title   string
	Page    string
	Session *session
	Nav     []navItem
	Flash   string
	Error   string
	Data    any
}

// navItem is one entry of the navigation, shown when the session may read
// its resource.
type navItem struct {
	Page, Label, Href string
}

// nav lists every page with the resource it reads ("" for every session).
var nav = []struct{ page, label, resource string }{
	{"overview", "Overview", ""},
	{"accounts", "Accounts", authz.ResourceAccount},
	{"roles", "Roles", authz.ResourceRole},
	{"apps", "Apps", authz.ResourceApp},
	{"channels", "Channels", authz.ResourceChannel},
	{"sessions", "Sessions", authz.ResourceSession},
	{"keys", "Keys", authz.ResourceKey},
	{"audit", "Audit", authz.ResourceAudit},
}

// navFor returns the navigation s may see.
func (c *Console) navFor(s *session) []navItem {
	var out []navItem
	for _, n := range nav {
		if (n.page == "apps" && c.Fabric == nil) || ((n.page == "channels" || n.page == "sessions") && c.Messaging == nil) {
			continue
		}
		if n.resource == "" || s.Can(n.resource, authz.VerbGet) {
			href := Prefix + n.page
			if n.page == "overview" {
				href = Prefix
			}
			out = append(out, navItem{Page: n.page, Label: n.label, Href: href})
		}
	}
	return out
}

// titles are the titles of the pages outside the navigation.
var titles = map[string]string{"login": "Sign in", "account": "Account", "role": "Role", "secret": "App secret", "error": "Not done"}

// flashes are the messages a redirect after a change may show; the query
// names one, so nothing a link carries is rendered.
var flashes = map[string]string{
	"created": "Created.", "updated": "Saved.", "deleted": "Deleted.", "cleared": "Locks cleared.",
	"password": "Password changed; the account's earlier sessions are revoked.", "ended": "Session ended.",
	"ended-all": "Every session of the user ended.", "rotated": "Key rotated.", "signed-out": "Signed out.",
}

// render writes page with data in the layout: 200, or, with err, err's
// message and status as the API answers them (wire.Errors.Prepare: an
// API error's message and detail, which never carry a secret, else a
// generic 500 with the cause in the log). A page that fails to render
// answers 500 with nothing of it.
func (c *Console) render(w http.ResponseWriter, r *http.Request, page string, s *session, data any, err error) {
	v := view{Page: page, Session: s, Data: data, Flash: flashes[r.URL.Query().Get("ok")]}
	v.Title = titles[page]
	for _, n := range nav {
		if n.page == page {
			v.Title = n.label
		}
	}
	if s != nil {
		v.Nav = c.navFor(s)
	}
	status := http.StatusOK
	if err != nil {
		ae := c.errs.Prepare(w, r, err)
		v.Error, v.Flash, status = ae.Message, "", ae.Status()
		if ae.Detail != "" {
			v.Error += ": " + ae.Detail
		}
	}
	var b bytes.Buffer
	t, ok := c.pages[page]
	if !ok {
		err = errNoTemplate
	} else {
		err = t.ExecuteTemplate(&b, "layout.html", v)
	}
	if err != nil {
		c.Logger.Error("console template", "page", page, "err", err)
		http.Error(w, apierror.Internal.Message, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = b.WriteTo(w)
}

// errNoTemplate is a page rendered without a template.
var errNoTemplate = errors.New("no such template")

// redirect answers a successful change: back to target with a flash.
func redirect(w http.ResponseWriter, r *http.Request, target, flash string) {
	u := target
	if flash != "" {
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		u += sep + "ok=" + url.QueryEscape(flash)
	}
	http.Redirect(w, r, u, http.StatusSeeOther)
}

// errNoPage answers a path under the console no page takes.
var errNoPage = apierror.NotFound.WithDetail("no such page")

// errForm answers a form that cannot be read.
var errForm = apierror.InvalidParams.WithDetail("the form cannot be read")
