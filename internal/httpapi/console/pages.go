package console

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/apifabric"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/ccmessaging"
	"github.com/gatehouse/gatehouse/internal/engine"
	"github.com/gatehouse/gatehouse/internal/httpapi/wire"
	"github.com/gatehouse/gatehouse/internal/keyring"
)

// loader returns what a page shows.
type loader func(r *http.Request, s *session) (any, error)

// show renders page with what load returns.
func (c *Console) show(page string, load loader) func(http.ResponseWriter, *http.Request, *session) {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		data, err := load(r, s)
		c.render(w, r, page, s, data, err)
	}
}

// change runs do, which answers where to go and the flash to show; when
// it fails, page is shown again with the error.
func (c *Console) change(page string, load loader, do func(r *http.Request, s *session) (string, string, error)) func(http.ResponseWriter, *http.Request, *session) {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		target, flash, err := do(r, s)
		if err != nil {
			data, _ := load(r, s)
			c.render(w, r, page, s, data, err)
			return
		}
		redirect(w, r, target, flash)
	}
}

// routes registers every page and form. Each names the resource and verb
// the API's route for the same operation checks.
func (c *Console) routes() {
	const (
		acc, role, key, aud = authz.ResourceAccount, authz.ResourceRole, authz.ResourceKey, authz.ResourceAudit
		get, create, update = authz.VerbGet, authz.VerbCreate, authz.VerbUpdate
		del                 = authz.VerbDelete
	)
	m := c.mux
	m.Handle("GET "+Prefix+"static/", c.static)
	m.HandleFunc("GET "+Prefix+"login", c.loginPage)
	m.HandleFunc("POST "+Prefix+"login", c.login)
	m.HandleFunc("POST "+Prefix+"logout", c.guard("", "", c.logout))
	m.HandleFunc("GET "+Prefix+"{$}", c.guard("", "", c.show("overview", c.loadOverview)))
	m.HandleFunc("GET "+Prefix+"overview/data", c.guard("", "", c.overviewData))
	m.HandleFunc(Prefix, c.guard("", "", func(w http.ResponseWriter, r *http.Request, s *session) {
		c.render(w, r, "error", s, nil, errNoPage)
	}))

	m.HandleFunc("GET "+Prefix+"accounts", c.guard(acc, get, c.show("accounts", c.loadAccounts)))
	m.HandleFunc("POST "+Prefix+"accounts", c.guard(acc, create, c.change("accounts", c.loadAccounts, c.createAccount)))
	m.HandleFunc("GET "+Prefix+"accounts/{name}", c.guard(acc, get, c.show("account", c.loadAccount)))
	m.HandleFunc("POST "+Prefix+"accounts/{name}", c.guard(acc, update, c.change("account", c.loadAccount, c.updateAccount)))
	m.HandleFunc("POST "+Prefix+"accounts/{name}/delete", c.guard(acc, del, c.change("account", c.loadAccount, c.deleteAccount)))
	// As POST /v4/accounts/{name}/password, a password change needs a
	// session only; the engine decides who may change whose.
	m.HandleFunc("POST "+Prefix+"accounts/{name}/password", c.guard("", "", c.change("account", c.loadAccount, c.changePassword)))
	m.HandleFunc("POST "+Prefix+"locks/clear", c.guard(acc, del, c.change("accounts", c.loadAccounts, c.clearLocks)))

	m.HandleFunc("GET "+Prefix+"roles", c.guard(role, get, c.show("roles", c.loadRoles)))
	m.HandleFunc("POST "+Prefix+"roles", c.guard(role, create, c.change("roles", c.loadRoles, c.createRole)))
	m.HandleFunc("GET "+Prefix+"roles/{name}", c.guard(role, get, c.show("role", c.loadRole)))
	m.HandleFunc("POST "+Prefix+"roles/{name}", c.guard(role, update, c.change("role", c.loadRole, c.updateRole)))
	m.HandleFunc("POST "+Prefix+"roles/{name}/delete", c.guard(role, del, c.change("role", c.loadRole, c.deleteRole)))

	m.HandleFunc("GET "+Prefix+"keys", c.guard(key, get, c.show("keys", c.loadKeys)))
	m.HandleFunc("POST "+Prefix+"keys/rotate", c.guard(key, create, c.change("keys", c.loadKeys, c.rotateKey)))

	m.HandleFunc("GET "+Prefix+"audit", c.guard(aud, get, c.show("audit", c.loadAudit)))
	m.HandleFunc("GET "+Prefix+"audit/tail", c.guard(aud, get, c.auditTail))

	if c.Fabric != nil {
		c.fabricRoutes()
	}
	if c.Messaging != nil {
		c.messagingRoutes()
	}
}

func (c *Console) fabricRoutes() {
	const app = authz.ResourceApp
	m := c.mux
	m.HandleFunc("GET "+Prefix+"apps", c.guard(app, authz.VerbGet, c.show("apps", c.loadApps)))
	m.HandleFunc("POST "+Prefix+"apps", c.guard(app, authz.VerbCreate, c.createApp))
	m.HandleFunc("POST "+Prefix+"apps/{key}/secret", c.guard(app, authz.VerbCreate, c.rotateSecret))
	m.HandleFunc("POST "+Prefix+"apps/{key}/status", c.guard(app, authz.VerbUpdate, c.change("apps", c.loadApps, c.setAppStatus)))
}

func (c *Console) messagingRoutes() {
	const ch, sess = authz.ResourceChannel, authz.ResourceSession
	m := c.mux
	m.HandleFunc("GET "+Prefix+"channels", c.guard(ch, authz.VerbGet, c.show("channels", c.loadChannels)))
	m.HandleFunc("POST "+Prefix+"channels", c.guard(ch, authz.VerbCreate, c.change("channels", c.loadChannels, c.createChannel)))
	m.HandleFunc("POST "+Prefix+"channels/{id}", c.guard(ch, authz.VerbUpdate, c.change("channels", c.loadChannels, c.updateChannel)))
	m.HandleFunc("GET "+Prefix+"sessions", c.guard(sess, authz.VerbGet, c.show("sessions", c.loadSessions)))
	m.HandleFunc("POST "+Prefix+"sessions/end", c.guard(sess, authz.VerbDelete, c.change("sessions", c.loadSessions, c.endSession)))
	m.HandleFunc("POST "+Prefix+"sessions/end-all", c.guard(sess, authz.VerbDelete, c.change("sessions", c.loadSessions, c.endAllSessions)))
}

// --- accounts ---

type accountsData struct {
	Q        string
	Accounts []engine.Account
	Roles    []engine.Role
	Locks    []engine.Lock
}

func (c *Console) loadAccounts(r *http.Request, s *session) (any, error) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	d := accountsData{Q: q, Roles: c.Engine.ListRoles()}
	for _, a := range c.Engine.ListAccounts() {
		if q == "" || strings.Contains(strings.ToLower(a.Name), strings.ToLower(q)) {
			d.Accounts = append(d.Accounts, a)
		}
	}
	locks, err := c.Engine.Locks(r.Context())
	d.Locks = locks
	return d, err
}

func (c *Console) createAccount(r *http.Request, s *session) (string, string, error) {
	f := r.PostForm
	err := c.Engine.CreateAccount(r.Context(), s.caller, engine.CreateAccountRequest{
		Name: f.Get("name"), Password: f.Get("password"), Roles: f["roles"], Status: f.Get("status")})
	return Prefix + "accounts", "created", err
}

type accountData struct {
	Account engine.Account
	Roles   []engine.Role
	Self    bool
}

func (c *Console) loadAccount(r *http.Request, s *session) (any, error) {
	a, err := c.Engine.GetAccount(r.PathValue("name"))
	if err != nil {
		return nil, err
	}
	return accountData{Account: a, Roles: c.Engine.ListRoles(), Self: a.Name == s.Account()}, nil
}

func (c *Console) updateAccount(r *http.Request, s *session) (string, string, error) {
	name := r.PathValue("name")
	err := c.Engine.UpdateAccount(r.Context(), s.caller, name, engine.UpdateAccountRequest{
		Roles: r.PostForm["roles"], Status: r.PostForm.Get("status")})
	return accountPath(name), "updated", err
}

func (c *Console) deleteAccount(r *http.Request, s *session) (string, string, error) {
	return Prefix + "accounts", "deleted", c.Engine.DeleteAccount(r.Context(), s.caller, r.PathValue("name"))
}

func (c *Console) changePassword(r *http.Request, s *session) (string, string, error) {
	name := r.PathValue("name")
	err := c.Engine.ChangePassword(r.Context(), s.caller, name, engine.ChangePasswordRequest{
		CurrentPassword: r.PostForm.Get("currentPassword"), Password: r.PostForm.Get("password")})
	return accountPath(name), "password", err
}

func (c *Console) clearLocks(r *http.Request, s *session) (string, string, error) {
	return Prefix + "accounts", "cleared", c.Engine.ClearLocks(r.Context(), s.caller, r.PostForm.Get("name"))
}

func accountPath(name string) string { return Prefix + "accounts/" + url.PathEscape(name) }

// nonNil is v, or an empty list for nil: a form without a field sets an
// empty list, as the API's JSON [] does, not a missing one.
func nonNil(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// --- roles ---

// verbs are the verbs a permission can grant, in the form's order.
var verbs = []string{authz.VerbGet, authz.VerbCreate, authz.VerbUpdate, authz.VerbDelete, authz.VerbAll}

type rolesData struct {
	Roles []engine.Role
	Form  roleForm
}

// roleForm is the permission grid: every resource type with the verbs
// granted on it.
type roleForm struct {
	Types []string
	Verbs []string
	Grant map[string][]string
	// Labeled: some permission narrows resources by labels, which the
	// grid cannot show; the role is then edited through the API.
	Labeled bool
}

func newRoleForm(perms []authz.Permission) roleForm {
	f := roleForm{Types: authz.ResourceTypes(), Verbs: verbs, Grant: map[string][]string{}}
	for _, p := range perms {
		for _, res := range p.Resources {
			if len(res.Labels) > 0 {
				f.Labeled = true
			}
			for _, v := range p.Verbs {
				if !slices.Contains(f.Grant[res.Type], v) {
					f.Grant[res.Type] = append(f.Grant[res.Type], v)
				}
			}
		}
	}
	return f
}

// formPerms reads the permission grid: one permission per set of verbs,
// holding every resource type granted exactly those verbs.
func formPerms(f url.Values) []authz.Permission {
	var perms []authz.Permission
	index := map[string]int{}
	for _, t := range authz.ResourceTypes() {
		vs := f["verbs."+t]
		if len(vs) == 0 {
			continue
		}
		k := strings.Join(vs, ",")
		i, ok := index[k]
		if !ok {
			i = len(perms)
			index[k] = i
			perms = append(perms, authz.Permission{Verbs: vs})
		}
		perms[i].Resources = append(perms[i].Resources, authz.Resource{Type: t})
	}
	return perms
}

func (c *Console) loadRoles(r *http.Request, s *session) (any, error) {
	return rolesData{Roles: c.Engine.ListRoles(), Form: newRoleForm(nil)}, nil
}

func (c *Console) createRole(r *http.Request, s *session) (string, string, error) {
	name := r.PostForm.Get("name")
	err := c.Engine.CreateRole(r.Context(), s.caller, engine.RoleRequest{Name: name, Perms: formPerms(r.PostForm)})
	return rolePath(name), "created", err
}

type roleData struct {
	Role engine.Role
	Form roleForm
}

func (c *Console) loadRole(r *http.Request, s *session) (any, error) {
	ro, err := c.Engine.GetRole(r.PathValue("name"))
	if err != nil {
		return nil, err
	}
	return roleData{Role: ro, Form: newRoleForm(ro.Perms)}, nil
}

func (c *Console) updateRole(r *http.Request, s *session) (string, string, error) {
	name := r.PathValue("name")
	ro, err := c.Engine.GetRole(name)
	if err == nil && newRoleForm(ro.Perms).Labeled {
		err = apierror.InvalidParams.WithDetail("this role narrows resources by labels; edit it through the API")
	}
	if err == nil {
		err = c.Engine.UpdateRole(r.Context(), s.caller, name, engine.RoleRequest{Name: name, Perms: formPerms(r.PostForm)})
	}
	return rolePath(name), "updated", err
}

func (c *Console) deleteRole(r *http.Request, s *session) (string, string, error) {
	return Prefix + "roles", "deleted", c.Engine.DeleteRole(r.Context(), s.caller, r.PathValue("name"))
}

func rolePath(name string) string { return Prefix + "roles/" + url.PathEscape(name) }

// --- apps ---

func (c *Console) loadApps(r *http.Request, s *session) (any, error) { return c.Fabric.ListApps(), nil }

// secretData is the page that shows a new secret, this once.
type secretData struct {
	AppKey, Name, Secret string
	Rotated              bool
}

func (c *Console) createApp(w http.ResponseWriter, r *http.Request, s *session) {
	a, err := c.Fabric.CreateApp(r.Context(), s.caller, apifabric.CreateAppRequest{
		Name: r.PostForm.Get("name"), Description: r.PostForm.Get("description")})
	if err != nil {
		c.render(w, r, "apps", s, c.Fabric.ListApps(), err)
		return
	}
	c.render(w, r, "secret", s, secretData{AppKey: a.AppKey, Name: a.Name, Secret: a.AppSecret}, nil)
}

func (c *Console) rotateSecret(w http.ResponseWriter, r *http.Request, s *session) {
	key := r.PathValue("key")
	grace, err := strconv.Atoi(r.PostForm.Get("graceSeconds"))
	if err != nil {
		c.render(w, r, "apps", s, c.Fabric.ListApps(), apierror.InvalidParams.WithDetail("the grace period must be a number of seconds"))
		return
	}
	sec, err := c.Fabric.RotateSecret(r.Context(), s.caller, key, apifabric.RotateSecretRequest{GraceSeconds: grace})
	if err != nil {
		c.render(w, r, "apps", s, c.Fabric.ListApps(), err)
		return
	}
	a, _ := c.Fabric.GetApp(key)
	c.render(w, r, "secret", s, secretData{AppKey: sec.AppKey, Name: a.Name, Secret: sec.AppSecret, Rotated: true}, nil)
}

func (c *Console) setAppStatus(r *http.Request, s *session) (string, string, error) {
	st := r.PostForm.Get("status")
	_, err := c.Fabric.UpdateApp(r.Context(), s.caller, r.PathValue("key"), apifabric.UpdateAppRequest{Status: &st})
	return Prefix + "apps", "updated", err
}

// --- channels and sessions ---

func (c *Console) loadChannels(r *http.Request, s *session) (any, error) {
	return c.Messaging.ListChannels(), nil
}

// appKeys reads a list of app keys separated by commas or spaces.
func appKeys(v string) []string {
	return nonNil(strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' }))
}

func (c *Console) createChannel(r *http.Request, s *session) (string, string, error) {
	f := r.PostForm
	_, err := c.Messaging.CreateChannel(r.Context(), s.caller, ccmessaging.ChannelRequest{
		ID: f.Get("id"), Name: f.Get("name"), AppKeys: appKeys(f.Get("appKeys")), SessionIdleTimeout: f.Get("sessionIdleTimeout")})
	return Prefix + "channels", "created", err
}

func (c *Console) updateChannel(r *http.Request, s *session) (string, string, error) {
	f := r.PostForm
	name, idle, keys := f.Get("name"), f.Get("sessionIdleTimeout"), appKeys(f.Get("appKeys"))
	_, err := c.Messaging.UpdateChannel(r.Context(), s.caller, r.PathValue("id"), ccmessaging.UpdateChannelRequest{
		Name: &name, AppKeys: &keys, SessionIdleTimeout: &idle})
	return Prefix + "channels", "updated", err
}

type sessionsData struct {
	Channel, User string
	Sessions      []ccmessaging.SessionInfo
}

func (c *Console) loadSessions(r *http.Request, s *session) (any, error) {
	q := r.URL.Query()
	d := sessionsData{Channel: strings.TrimSpace(q.Get("channel")), User: strings.TrimSpace(q.Get("user"))}
	d.Sessions = c.Messaging.Sessions(d.Channel, d.User)
	return d, nil
}

func (c *Console) endSession(r *http.Request, s *session) (string, string, error) {
	f := r.PostForm
	err := c.Messaging.KillSession(r.Context(), s.caller, f.Get("channel"), f.Get("user"))
	return sessionsPath(f), "ended", err
}

// endAllSessions ends every live session of a user, on every channel: one
// KillSession, as DELETE /v4/ccmessaging-sessions does, per session.
func (c *Console) endAllSessions(r *http.Request, s *session) (string, string, error) {
	user := r.PostForm.Get("user")
	if user == "" {
		return "", "", apierror.InvalidParams.WithDetail("the user is required")
	}
	for _, si := range c.Messaging.Sessions("", user) {
		if err := c.Messaging.KillSession(r.Context(), s.caller, si.ChannelID, si.UserID); err != nil && !isNotFound(err) {
			return "", "", err
		}
	}
	return sessionsPath(r.PostForm), "ended-all", nil
}

// isNotFound reports whether err says the thing is gone already (a
// session that ended meanwhile).
func isNotFound(err error) bool {
	ae, ok := apierror.As(err)
	return ok && ae.Status() == http.StatusNotFound
}

// sessionsPath is the sessions page with the search a form came from.
func sessionsPath(f url.Values) string {
	q := url.Values{}
	for _, k := range []string{"channel", "user"} {
		if v := f.Get("q" + k); v != "" {
			q.Set(k, v)
		}
	}
	if len(q) == 0 {
		return Prefix + "sessions"
	}
	return Prefix + "sessions?" + q.Encode()
}

// --- keys ---

func (c *Console) loadKeys(r *http.Request, s *session) (any, error) { return c.Keys.Keys(), nil }

func (c *Console) rotateKey(r *http.Request, s *session) (string, string, error) {
	_, err := c.RotateKey(r.Context(), s.caller, keyring.RotateOptions{
		Immediate: r.PostForm.Get("immediate") == "on", Revoke: r.PostForm.Get("revoke") == "on"})
	return Prefix + "keys", "rotated", err
}

// --- audit ---

// auditPage is how many records the audit page shows at once;
// auditPages how many pages of matches it reaches.
const (
	auditPage  = 50
	auditPages = 100
)

type auditData struct {
	From, To, Actor, Action, Outcome string
	Records                          []audit.Record
	Page                             int
	Prev, Next                       string
	Newest                           string
	Filtered                         bool
}

// auditTimeLayout is the form of the time range fields (datetime-local, UTC).
const auditTimeLayout = "2006-01-02T15:04"

func (c *Console) loadAudit(r *http.Request, s *session) (any, error) {
	q := r.URL.Query()
	d := auditData{From: q.Get("from"), To: q.Get("to"), Actor: strings.TrimSpace(q.Get("actor")),
		Action: strings.TrimSpace(q.Get("action")), Outcome: q.Get("outcome")}
	d.Page, _ = strconv.Atoi(q.Get("page"))
	d.Page = min(max(d.Page, 1), auditPages)
	f := audit.Filter{Actor: d.Actor, Action: d.Action, Outcome: d.Outcome}
	var err error
	if d.From != "" {
		if f.From, err = time.Parse(auditTimeLayout, d.From); err != nil {
			return d, apierror.InvalidParams.WithDetail("from is not a time")
		}
	}
	if d.To != "" {
		if f.To, err = time.Parse(auditTimeLayout, d.To); err != nil {
			return d, apierror.InvalidParams.WithDetail("to is not a time")
		}
		f.To = f.To.Add(time.Minute) // the minute To names is in the range
	}
	// One more than the page ends with tells whether a next page exists.
	match, err := c.Audit.Query(r.Context(), f, d.Page*auditPage+1)
	if err != nil {
		return d, apierror.FromStore(err)
	}
	d.Filtered = d.From != "" || d.To != "" || d.Actor != "" || d.Action != "" || d.Outcome != ""
	if !d.Filtered && len(match) > 0 {
		d.Newest = match[0].Time.Format(time.RFC3339Nano)
	}
	start := min((d.Page-1)*auditPage, len(match))
	end := min(start+auditPage, len(match))
	d.Records = match[start:end]
	page := func(n int) string {
		v := url.Values{}
		for k, val := range map[string]string{"from": d.From, "to": d.To, "actor": d.Actor, "action": d.Action, "outcome": d.Outcome} {
			if val != "" {
				v.Set(k, val)
			}
		}
		v.Set("page", strconv.Itoa(n))
		return Prefix + "audit?" + v.Encode()
	}
	if d.Page > 1 {
		d.Prev = page(d.Page - 1)
	}
	if end < len(match) && d.Page < auditPages {
		d.Next = page(d.Page + 1)
	}
	return d, nil
}

// auditTail answers the records newer than ?after (RFC 3339), newest
// first, at most a page of them, as JSON for the audit page's live tail.
func (c *Console) auditTail(w http.ResponseWriter, r *http.Request, s *session) {
	after, err := time.Parse(time.RFC3339Nano, r.URL.Query().Get("after"))
	if err != nil {
		c.errs.Write(w, r, apierror.InvalidParams.WithDetail("after must be an RFC 3339 time"))
		return
	}
	recs, err := c.Audit.Query(r.Context(), audit.Filter{From: after.Add(time.Nanosecond)}, auditPage)
	if err != nil {
		c.errs.Write(w, r, apierror.FromStore(err))
		return
	}
	wire.WriteJSON(w, http.StatusOK, recs)
}
