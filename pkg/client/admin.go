package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Admin calls Gatehouse's admin API (accounts, roles, locks, apps,
// channels, sessions, keys, audit, backup) through a Doer that authenticates the
// requests: an *Engine, or BearerToken for a token obtained elsewhere.
// Errors of the API are *Error.
type Admin struct {
	base string
	d    Doer
}

// NewAdmin returns an admin client of the Gatehouse at baseURL sending
// every request through d.
func NewAdmin(baseURL string, d Doer) *Admin {
	return &Admin{base: strings.TrimSuffix(baseURL, "/"), d: d}
}

// BearerToken returns a Doer that sends requests through hc
// [http.DefaultClient] with token in Authorization.
func BearerToken(hc *http.Client, token string) Doer {
	return bearerDoer{hc: httpClient(hc), h: bearer(token)}
}

type bearerDoer struct {
	hc *http.Client
	h  http.Header
}

func (b bearerDoer) Do(req *http.Request) (*http.Response, error) {
	return send(b.hc, req, b.h, false)
}

// Account is an engine account; it never carries a password.
type Account struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Roles      []string `json:"roles"`
	Status     string   `json:"status"`
	CreateTime string   `json:"createTime"`
	UpdateTime string   `json:"updateTime"`
}

// CreateAccount is the body of an account creation.
type CreateAccount struct {
	Name     string   `json:"name"`
	Password string   `json:"password"`
	Roles    []string `json:"roles"`
	Status   string   `json:"status,omitempty"`
}

// UpdateAccount changes an account; nil fields are left alone.
type UpdateAccount struct {
	Roles  []string `json:"roles,omitempty"`
	Status *string  `json:"status,omitempty"`
}

// Resource is a resource type a permission applies to.
type Resource struct {
	Type   string            `json:"type"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Permission grants verbs on resources.
type Permission struct {
	Resources []Resource `json:"resources"`
	Verbs     []string   `json:"verbs"`
}

// Role is a named set of permissions.
type Role struct {
	ID         string       `json:"id"`
	Name       string       `json:"name"`
	Perms      []Permission `json:"perms"`
	CreateTime string       `json:"createTime"`
	UpdateTime string       `json:"updateTime"`
}

// Lock is a lockout entry: failed logins of one name::ip key.
type Lock struct {
	Key       string `json:"key"`
	Status    string `json:"status"`
	ReleaseAt int64  `json:"releaseAt"`
}

// App is an API Fabric app; it never carries its secret.
type App struct {
	AppKey      string `json:"appKey"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Status      string `json:"status"`
	CreateTime  string `json:"createTime"`
	UpdateTime  string `json:"updateTime"`
}

// CreatedApp is a new app with its secret, which Gatehouse shows this once.
type CreatedApp struct {
	App
	AppSecret string `json:"appSecret"`
}

// AppSecret is the answer to a secret rotation, shown this once.
type AppSecret struct {
	AppKey    string `json:"appKey"`
	AppSecret string `json:"appSecret"`
}

// UpdateApp changes an app; nil fields are left alone, at least one must
// be set.
type UpdateApp struct {
	Name        *string `json:"name,omitempty"`
	Description *string `json:"description,omitempty"`
	Status      *string `json:"status,omitempty"`
}

// Channel is a ccmessaging channel and the apps it is open to.
type Channel struct {
	ID                 string   `json:"id"`
	Name               string   `json:"name"`
	AppKeys            []string `json:"appKeys"`
	SessionIdleTimeout string   `json:"sessionIdleTimeout"`
	CreateTime         string   `json:"createTime"`
	UpdateTime         string   `json:"updateTime"`
}

// CreateChannel is the body of a channel creation; ID is generated when
// empty, SessionIdleTimeout defaults to 30m.
type CreateChannel struct {
	ID                 string   `json:"id,omitempty"`
	Name               string   `json:"name"`
	AppKeys            []string `json:"appKeys"`
	SessionIdleTimeout string   `json:"sessionIdleTimeout,omitempty"`
}

// UpdateChannel changes a channel; nil fields are left alone, at least one
// must be set. An empty AppKeys closes the channel to every app.
type UpdateChannel struct {
	Name               *string   `json:"name,omitempty"`
	AppKeys            *[]string `json:"appKeys,omitempty"`
	SessionIdleTimeout *string   `json:"sessionIdleTimeout,omitempty"`
}

// SessionInfo is a live ccmessaging session.
type SessionInfo struct {
	ChannelID        string `json:"channelId"`
	UserID           string `json:"userId"`
	UserName         string `json:"userName"`
	Locale           string `json:"locale"`
	AppKey           string `json:"appKey"`
	CreateTime       string `json:"createTime"`
	LastActivityTime string `json:"lastActivityTime"`
	ExpiresAt        int64  `json:"expiresAt"`
	SessionExpiresAt int64  `json:"sessionExpiresAt"`
}

// Key is a signing key of the key ring.
type Key struct {
	ID        string    `json:"id"`
	Algorithm string    `json:"algorithm"`
	Bits      int       `json:"bits"`
	Created   time.Time `json:"created"`
	Status    string    `json:"status"` // pending, active or retired
	// Activates is when a pre-published key starts (or started) signing.
	Activates time.Time `json:"activates,omitzero"`
	Retired   time.Time `json:"retired,omitzero"`
	Expires   time.Time `json:"expires,omitzero"`
}

// RotateKeyRequest chooses how RotateKey switches keys; the zero value
// pre-publishes the new key.
type RotateKeyRequest struct {
	// Immediate makes the new key sign at once (emergency rotation)
	// instead of after the server's pre-publication time.
	Immediate bool `json:"immediate,omitempty"`
	// Revoke, with Immediate, makes every earlier key stop verifying at
	// once, and every token it signed with it.
	Revoke bool `json:"revoke,omitempty"`
}

// AuditRecord is a security event.
type AuditRecord struct {
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor,omitempty"`
	IP      string    `json:"ip,omitempty"`
	Action  string    `json:"action"`
	Target  string    `json:"target,omitempty"`
	Outcome string    `json:"outcome"`
	Detail  string    `json:"detail,omitempty"`
}

// listOf is the {"total","data"} envelope of list answers.
type listOf[T any] struct {
	Data []T `json:"data"`
}

func (a *Admin) do(ctx context.Context, method, path string, in, out any) error {
	return call(ctx, a.d, method, a.base+path, nil, in, out)
}

func list[T any](ctx context.Context, a *Admin, path string) ([]T, error) {
	var l listOf[T]
	if err := a.do(ctx, http.MethodGet, path, nil, &l); err != nil {
		return nil, err
	}
	return l.Data, nil
}

func get[T any](ctx context.Context, a *Admin, path string) (T, error) {
	var v T
	err := a.do(ctx, http.MethodGet, path, nil, &v)
	return v, err
}

func seg(s string) string { return url.PathEscape(s) }

// Accounts lists the accounts.
func (a *Admin) Accounts(ctx context.Context) ([]Account, error) {
	return list[Account](ctx, a, "/v4/accounts")
}

// Account returns one account.
func (a *Admin) Account(ctx context.Context, name string) (Account, error) {
	return get[Account](ctx, a, "/v4/accounts/"+seg(name))
}

// CreateAccount creates an account.
func (a *Admin) CreateAccount(ctx context.Context, req CreateAccount) error {
	return a.do(ctx, http.MethodPost, "/v4/accounts", req, nil)
}

// UpdateAccount changes an account's roles and status. The server needs
// the roles in every update (as Service Center does); an empty status
// leaves it as it is.
func (a *Admin) UpdateAccount(ctx context.Context, name string, req UpdateAccount) error {
	return a.do(ctx, http.MethodPut, "/v4/accounts/"+seg(name), req, nil)
}

// DeleteAccount deletes an account.
func (a *Admin) DeleteAccount(ctx context.Context, name string) error {
	return a.do(ctx, http.MethodDelete, "/v4/accounts/"+seg(name), nil, nil)
}

// ChangePassword sets name's password; current is needed for one's own.
func (a *Admin) ChangePassword(ctx context.Context, name, current, password string) error {
	in := map[string]string{"currentPassword": current, "password": password}
	return a.do(ctx, http.MethodPost, "/v4/accounts/"+seg(name)+"/password", in, nil)
}

// Roles lists the roles.
func (a *Admin) Roles(ctx context.Context) ([]Role, error) {
	return list[Role](ctx, a, "/v4/roles")
}

// Role returns one role.
func (a *Admin) Role(ctx context.Context, name string) (Role, error) {
	return get[Role](ctx, a, "/v4/roles/"+seg(name))
}

// CreateRole creates a role.
func (a *Admin) CreateRole(ctx context.Context, name string, perms []Permission) error {
	return a.do(ctx, http.MethodPost, "/v4/roles", map[string]any{"name": name, "perms": perms}, nil)
}

// UpdateRole replaces a role's permissions.
func (a *Admin) UpdateRole(ctx context.Context, name string, perms []Permission) error {
	return a.do(ctx, http.MethodPut, "/v4/roles/"+seg(name), map[string]any{"perms": perms}, nil)
}

// DeleteRole deletes a role no account holds.
func (a *Admin) DeleteRole(ctx context.Context, name string) error {
	return a.do(ctx, http.MethodDelete, "/v4/roles/"+seg(name), nil, nil)
}

// Locks lists the lockout entries.
func (a *Admin) Locks(ctx context.Context) ([]Lock, error) {
	return list[Lock](ctx, a, "/v4/account-locks")
}

// ClearLocks clears every lock and failed attempt of an account.
func (a *Admin) ClearLocks(ctx context.Context, name string) error {
	return a.do(ctx, http.MethodDelete, "/v4/account-locks/"+seg(name), nil, nil)
}

// Apps lists the apps.
func (a *Admin) Apps(ctx context.Context) ([]App, error) {
	return list[App](ctx, a, "/v4/apps")
}

// App returns one app.
func (a *Admin) App(ctx context.Context, appKey string) (App, error) {
	return get[App](ctx, a, "/v4/apps/"+seg(appKey))
}

// CreateApp creates an app; the answer holds its secret, shown this once.
func (a *Admin) CreateApp(ctx context.Context, name, description string) (CreatedApp, error) {
	var out CreatedApp
	err := a.do(ctx, http.MethodPost, "/v4/apps", map[string]string{"name": name, "description": description}, &out)
	return out, err
}

// UpdateApp changes an app.
func (a *Admin) UpdateApp(ctx context.Context, appKey string, req UpdateApp) (App, error) {
	var out App
	err := a.do(ctx, http.MethodPut, "/v4/apps/"+seg(appKey), req, &out)
	return out, err
}

// DeleteApp deletes an app.
func (a *Admin) DeleteApp(ctx context.Context, appKey string) error {
	return a.do(ctx, http.MethodDelete, "/v4/apps/"+seg(appKey), nil, nil)
}

// RotateSecret gives an app a new secret; the old one, and AccessTokens
// obtained with it, keep working for grace (whole seconds, at most 24h).
func (a *Admin) RotateSecret(ctx context.Context, appKey string, grace time.Duration) (AppSecret, error) {
	var out AppSecret
	in := map[string]int{"graceSeconds": int(grace / time.Second)}
	err := a.do(ctx, http.MethodPost, "/v4/apps/"+seg(appKey)+"/secret", in, &out)
	return out, err
}

// Channels lists the channels.
func (a *Admin) Channels(ctx context.Context) ([]Channel, error) {
	return list[Channel](ctx, a, "/v4/channels")
}

// Channel returns one channel.
func (a *Admin) Channel(ctx context.Context, id string) (Channel, error) {
	return get[Channel](ctx, a, "/v4/channels/"+seg(id))
}

// CreateChannel creates a channel.
func (a *Admin) CreateChannel(ctx context.Context, req CreateChannel) (Channel, error) {
	if req.AppKeys == nil {
		req.AppKeys = []string{}
	}
	var out Channel
	err := a.do(ctx, http.MethodPost, "/v4/channels", req, &out)
	return out, err
}

// UpdateChannel changes a channel.
func (a *Admin) UpdateChannel(ctx context.Context, id string, req UpdateChannel) (Channel, error) {
	var out Channel
	err := a.do(ctx, http.MethodPut, "/v4/channels/"+seg(id), req, &out)
	return out, err
}

// DeleteChannel deletes a channel and ends its sessions.
func (a *Admin) DeleteChannel(ctx context.Context, id string) error {
	return a.do(ctx, http.MethodDelete, "/v4/channels/"+seg(id), nil, nil)
}

// Sessions lists the live ccmessaging sessions, of one channel and/or one
// user when they are not empty.
func (a *Admin) Sessions(ctx context.Context, channelID, userID string) ([]SessionInfo, error) {
	q := url.Values{}
	if channelID != "" {
		q.Set("channelId", channelID)
	}
	if userID != "" {
		q.Set("userId", userID)
	}
	path := "/v4/ccmessaging-sessions"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return list[SessionInfo](ctx, a, path)
}

// KillSession ends one user's session on one channel.
func (a *Admin) KillSession(ctx context.Context, channelID, userID string) error {
	return a.do(ctx, http.MethodDelete, "/v4/ccmessaging-sessions/"+seg(channelID)+"/"+seg(userID), nil, nil)
}

// Keys lists the signing keys.
func (a *Admin) Keys(ctx context.Context) ([]Key, error) {
	return list[Key](ctx, a, "/v4/keys")
}

// RotateKey makes a new signing key: by default it is published at once
// and signs after the server's pre-publication time (status pending until
// then); if a key is already waiting to sign, that key is returned.
func (a *Admin) RotateKey(ctx context.Context, req RotateKeyRequest) (Key, error) {
	var out Key
	err := a.do(ctx, http.MethodPost, "/v4/keys/rotate", req, &out)
	return out, err
}

// Audit returns the newest limit audit records (1..1000; 0 takes the
// server's default, 100), newest first.
func (a *Admin) Audit(ctx context.Context, limit int) ([]AuditRecord, error) {
	path := "/v4/audit"
	if limit != 0 {
		path += "?limit=" + strconv.Itoa(limit)
	}
	return list[AuditRecord](ctx, a, path)
}

// BackupRevisionHeader carries the store revision of a backup.
const BackupRevisionHeader = "X-Gatehouse-Backup-Revision"

// Backup streams a backup of the whole store (GET /v4/backup) to w and
// returns the store revision it reflects and the bytes written. The
// caller needs the backup permission (root has it). The request runs as
// long as ctx and the Doer's client allow: a large store takes longer
// than a usual timeout. A stream cut short returns an error; what reached
// w then lacks the end that `gatehouse restore` checks for.
func (a *Admin) Backup(ctx context.Context, w io.Writer) (revision, written int64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/v4/backup", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := a.d.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, readError(resp)
	}
	revision, _ = strconv.ParseInt(resp.Header.Get(BackupRevisionHeader), 10, 64)
	written, err = io.Copy(w, resp.Body)
	if err != nil {
		return revision, written, fmt.Errorf("gatehouse: backup cut off after %d bytes: %w", written, err)
	}
	return revision, written, nil
}
