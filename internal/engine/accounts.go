package engine

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Limits of the account API.
const (
	MaxRolesPerAccount = 5
	MaxBatchCreate     = 20
)

// CreateAccountRequest is the body of POST /v4/accounts.
type CreateAccountRequest struct {
	Name     string   `json:"name"`
	Password string   `json:"password"`
	Roles    []string `json:"roles"`
	Status   string   `json:"status"`
}

// UpdateAccountRequest is the body of PUT /v4/accounts/{name}. As in
// Service Center, roles are required (they replace the account's roles)
// and an empty status leaves the status alone.
type UpdateAccountRequest struct {
	Roles  []string `json:"roles"`
	Status string   `json:"status"`
}

// ChangePasswordRequest is the body of POST /v4/accounts/{name}/password.
type ChangePasswordRequest struct {
	CurrentPassword string `json:"currentPassword"`
	Password        string `json:"password"`
}

// BatchResult is the outcome of one account of a batch create.
type BatchResult struct {
	Name string `json:"name"`
	*apierror.Error
}

// checkRoleNames applies Service Center's rule to the roles of an account
// create or update: 1 to MaxRolesPerAccount valid names.
func checkRoleNames(roles []string) error {
	if len(roles) < 1 || len(roles) > MaxRolesPerAccount {
		return apierror.InvalidParams.Detailf("an account needs 1 to %d roles", MaxRolesPerAccount)
	}
	for _, r := range roles {
		if !password.ValidName(r) {
			return apierror.InvalidParams.Detailf("invalid role name %q", r)
		}
	}
	return nil
}

// checkRolesExist refuses roles that do not exist.
func (e *Engine) checkRolesExist(roles []string) error {
	for _, r := range roles {
		if !e.roles.Has(r) {
			return apierror.AccountHasInvalidRole.Detailf("role %s not exists", r)
		}
	}
	return nil
}

func validStatus(s string) bool { return s == StatusActive || s == StatusInactive }

// CreateAccount creates an account.
func (e *Engine) CreateAccount(ctx context.Context, c authz.Caller, req CreateAccountRequest) error {
	existed := e.accounts.Has(req.Name)
	err := e.createAccount(ctx, req)
	e.auditAccount(c, "account.create", req.Name, existed, err)
	return err
}

// auditAccount audits a change of the account name. A name that is no
// account before or after the change (a rejected create, a change of a
// missing account) may be a mistyped password and is audited masked.
func (e *Engine) auditAccount(c authz.Caller, action, name string, existed bool, err error) {
	if !existed {
		name = e.shownName(name)
	}
	e.audit.Change(c.Account, c.IP, action, name, err)
}

func (e *Engine) createAccount(ctx context.Context, req CreateAccountRequest) error {
	if !password.ValidName(req.Name) {
		return apierror.InvalidParams.WithDetail("invalid account name")
	}
	if err := password.CheckNewAccountPassword(req.Name, req.Password); err != nil {
		return apierror.InvalidParams.WithDetail(err.Error())
	}
	if req.Status == "" {
		req.Status = StatusActive
	}
	if !validStatus(req.Status) {
		return apierror.InvalidParams.WithDetail("status must be active or inactive")
	}
	if err := checkRoleNames(req.Roles); err != nil {
		return err
	}
	if err := e.checkRolesExist(req.Roles); err != nil {
		return err
	}
	if e.accounts.Has(req.Name) {
		return apierror.AccountDuplicated
	}
	if e.accounts.Len() >= e.opts.MaxAccounts {
		return apierror.AccountNoQuota
	}
	hash, err := e.hashPassword(ctx, req.Password)
	if err != nil {
		return err
	}
	now := e.opts.Now()
	rec := accountRecord{ID: newRecordID(), Name: req.Name, PasswordHash: hash, Roles: dedupe(req.Roles),
		Status: req.Status, CreateTime: now.Unix(), UpdateTime: now.Unix(),
		// Tokens of an earlier account of the same name stay revoked.
		RevokedBefore: now.UnixMilli()}
	if _, err := e.create(ctx, accountPrefix+req.Name, rec); err != nil {
		if errors.Is(err, store.ErrExists) {
			return apierror.AccountDuplicated
		}
		return apierror.FromStore(err)
	}
	return nil
}

// BatchCreateAccounts creates 1 to 20 accounts, each independently.
func (e *Engine) BatchCreateAccounts(ctx context.Context, c authz.Caller, reqs []CreateAccountRequest) ([]BatchResult, error) {
	if len(reqs) < 1 || len(reqs) > MaxBatchCreate {
		return nil, apierror.InvalidParams.Detailf("a batch holds 1 to %d accounts", MaxBatchCreate)
	}
	out := make([]BatchResult, len(reqs))
	for i, req := range reqs {
		out[i].Name = req.Name
		if err := e.CreateAccount(ctx, c, req); err != nil {
			ae, ok := apierror.As(err)
			if !ok {
				return nil, err
			}
			out[i].Error = ae
		}
	}
	return out, nil
}

// ListAccounts returns every account, ordered by name.
func (e *Engine) ListAccounts() []Account {
	recs := sortedByName(e.accounts, func(a *accountRecord) string { return a.Name })
	out := make([]Account, len(recs))
	for i, r := range recs {
		out[i] = r.public()
	}
	return out
}

// GetAccount returns one account.
func (e *Engine) GetAccount(name string) (Account, error) {
	rec, ok := e.accounts.Get(name)
	if !ok {
		return Account{}, apierror.AccountNotExist
	}
	return rec.public(), nil
}

// checkMutable refuses changes to root and to the caller's own account.
func (e *Engine) checkMutable(c authz.Caller, name string) error {
	if name == RootAccount {
		return apierror.BuiltInAccount
	}
	if name == c.Account {
		return apierror.OwnAccount
	}
	if !e.accounts.Has(name) {
		return apierror.AccountNotExist
	}
	return nil
}

// UpdateAccount replaces an account's roles and, when given, its status.
// The change revokes the account's earlier tokens.
func (e *Engine) UpdateAccount(ctx context.Context, c authz.Caller, name string, req UpdateAccountRequest) error {
	existed := e.accounts.Has(name)
	err := e.doUpdateAccount(ctx, c, name, req)
	e.auditAccount(c, "account.update", name, existed, err)
	return err
}

func (e *Engine) doUpdateAccount(ctx context.Context, c authz.Caller, name string, req UpdateAccountRequest) error {
	// Service Center's order: the body's rules (roles are required, an
	// empty status means no change), then root and self, then existence.
	if err := checkRoleNames(req.Roles); err != nil {
		return err
	}
	if req.Status != "" && !validStatus(req.Status) {
		return apierror.InvalidParams.WithDetail("status must be active or inactive")
	}
	if err := e.checkMutable(c, name); err != nil {
		return err
	}
	if err := e.checkRolesExist(req.Roles); err != nil {
		return err
	}
	now := e.opts.Now()
	_, err := e.updateAccount(ctx, name, func(r *accountRecord) error {
		r.Roles = dedupe(req.Roles)
		if req.Status != "" {
			r.Status = req.Status
		}
		r.UpdateTime = now.Unix()
		r.revokeTokens(now.UnixMilli())
		return nil
	})
	if err == nil {
		metrics.TokensRevoked.WithLabelValues(metrics.KindEngine, "account-update").Inc()
	}
	return err
}

// DeleteAccount deletes an account; its tokens stop working at once.
func (e *Engine) DeleteAccount(ctx context.Context, c authz.Caller, name string) error {
	existed := e.accounts.Has(name)
	err := e.deleteAccount(ctx, c, name)
	e.auditAccount(c, "account.delete", name, existed, err)
	return err
}

func (e *Engine) deleteAccount(ctx context.Context, c authz.Caller, name string) error {
	if err := e.checkMutable(c, name); err != nil {
		return err
	}
	key := accountPrefix + name
	it, err := e.st.Update(ctx, key, func(cur *store.Item) (*store.Item, error) {
		if cur == nil {
			return nil, apierror.AccountNotExist
		}
		return nil, nil
	})
	if err != nil {
		return apierror.FromStore(err)
	}
	metrics.TokensRevoked.WithLabelValues(metrics.KindEngine, "account-delete").Inc()
	return e.sync(ctx, key, it.Revision)
}

// ChangePassword sets the password of account name. For one's own
// account the current password is required (a wrong one counts toward
// lockout); an admin may set another account's password without it,
// except root's, which only root changes. Earlier tokens of the account
// are revoked.
func (e *Engine) ChangePassword(ctx context.Context, c authz.Caller, name string, req ChangePasswordRequest) error {
	existed := e.accounts.Has(name)
	err := e.changePassword(ctx, c, name, req)
	e.auditAccount(c, "account.password", name, existed, err)
	return err
}

func (e *Engine) changePassword(ctx context.Context, c authz.Caller, name string, req ChangePasswordRequest) error {
	self := c.Account == name
	if !self && !slices.Contains(c.Roles, AdminRole) {
		return apierror.Forbidden.WithDetail("only an admin may change another account's password")
	}
	if !self && name == RootAccount {
		return apierror.BuiltInAccount.WithDetail("only root changes root's password")
	}
	if req.Password == "" {
		return apierror.InvalidParams.WithDetail("password is required")
	}
	if self && req.CurrentPassword == "" {
		return apierror.InvalidParams.WithDetail("currentPassword is required")
	}
	rec, ok := e.accounts.Get(name)
	if !ok {
		return apierror.AccountNotExist
	}
	if self {
		at, err := e.startAttempt(ctx, name, c.IP)
		if err != nil {
			return err
		}
		if ok, _, _ := e.verifyPassword(ctx, req.CurrentPassword, rec.PasswordHash); !ok {
			if err := at.fail(ctx); err != nil {
				return err
			}
			return apierror.WrongPassword
		}
		if err := at.succeed(ctx); err != nil {
			return err
		}
	}
	if same, _, _ := e.verifyPassword(ctx, req.Password, rec.PasswordHash); same {
		return apierror.NewPasswordBad.WithDetail("the new password equals the current one")
	}
	if err := password.CheckPassword(req.Password); err != nil {
		return apierror.InvalidParams.WithDetail(err.Error())
	}
	hash, err := e.hashPassword(ctx, req.Password)
	if err != nil {
		return err
	}
	now := e.opts.Now()
	_, err = e.updateAccount(ctx, name, func(r *accountRecord) error {
		// The current password was checked against rec: a change stored
		// since (an admin's reset, on any replica) must not be undone.
		if self && r.PasswordHash != rec.PasswordHash {
			return apierror.WrongPassword.WithDetail("the password was changed meanwhile")
		}
		r.PasswordHash = hash
		r.UpdateTime = now.Unix()
		r.revokeTokens(now.UnixMilli())
		return nil
	})
	if err == nil {
		metrics.TokensRevoked.WithLabelValues(metrics.KindEngine, "password-change").Inc()
		if name == RootAccount {
			e.removePasswordFile()
		}
	}
	return err
}

// updateAccount applies fn to the stored account atomically and waits
// until the local view reflects the result. fn may return errNoChange or
// an API error to abort.
func (e *Engine) updateAccount(ctx context.Context, name string, fn func(*accountRecord) error) (*accountRecord, error) {
	out, rev, err := updateAccountRecord(ctx, e.st, name, fn)
	if err != nil {
		return nil, err
	}
	return out, e.sync(ctx, accountPrefix+name, rev)
}

// updateAccountRecord applies fn to the stored account name and returns
// the new record and its revision.
func updateAccountRecord(ctx context.Context, st store.Store, name string, fn func(*accountRecord) error) (*accountRecord, int64, error) {
	var out accountRecord
	it, err := st.Update(ctx, accountPrefix+name, func(cur *store.Item) (*store.Item, error) {
		if cur == nil {
			return nil, apierror.AccountNotExist
		}
		var rec accountRecord
		if err := json.Unmarshal(cur.Value, &rec); err != nil {
			return nil, err
		}
		if err := fn(&rec); err != nil {
			return nil, err
		}
		out = rec
		return &store.Item{Value: store.EncodeJSON(&rec)}, nil
	})
	if err != nil {
		return nil, 0, apierror.FromStore(err)
	}
	return &out, it.Revision, nil
}

func dedupe(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
