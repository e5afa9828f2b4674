package engine

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/store"
)

// RoleRequest is the body of POST /v4/roles and PUT /v4/roles/{name}.
type RoleRequest struct {
	Name  string             `json:"name"`
	Perms []authz.Permission `json:"perms"`
}

// ListRoles returns every role, ordered by name.
func (e *Engine) ListRoles() []Role {
	recs := sortedByName(e.roles, func(r *roleRecord) string { return r.Name })
	out := make([]Role, len(recs))
	for i, r := range recs {
		out[i] = r.public()
	}
	return out
}

// GetRole returns one role.
func (e *Engine) GetRole(name string) (Role, error) {
	rec, ok := e.roles.Get(name)
	if !ok {
		return Role{}, apierror.RoleNotExist
	}
	return rec.public(), nil
}

// CreateRole creates a role.
func (e *Engine) CreateRole(ctx context.Context, c authz.Caller, req RoleRequest) error {
	err := e.createRole(ctx, req)
	e.audit.Change(c.Account, c.IP, "role.create", req.Name, err)
	return err
}

func (e *Engine) createRole(ctx context.Context, req RoleRequest) error {
	if !password.ValidName(req.Name) {
		return apierror.InvalidParams.WithDetail("invalid role name")
	}
	if err := authz.ValidatePerms(req.Perms); err != nil {
		return err
	}
	if e.roles.Has(req.Name) {
		return apierror.RoleDuplicated
	}
	if e.roles.Len() >= e.opts.MaxRoles {
		return apierror.RoleNoQuota
	}
	now := e.opts.Now().Unix()
	rec := roleRecord{ID: newRecordID(), Name: req.Name, Perms: nonNil(req.Perms), CreateTime: now, UpdateTime: now}
	if _, err := e.create(ctx, rolePrefix+req.Name, rec); err != nil {
		if errors.Is(err, store.ErrExists) {
			return apierror.RoleDuplicated
		}
		return apierror.FromStore(err)
	}
	return nil
}

// UpdateRole replaces the permissions of a role. The change applies to
// every token at once (permissions are looked up per request).
func (e *Engine) UpdateRole(ctx context.Context, c authz.Caller, name string, req RoleRequest) error {
	err := e.updateRole(ctx, name, req)
	e.audit.Change(c.Account, c.IP, "role.update", name, err)
	return err
}

func (e *Engine) updateRole(ctx context.Context, name string, req RoleRequest) error {
	if isBuiltinRole(name) {
		return apierror.BuiltInRole
	}
	if !e.roles.Has(name) {
		return apierror.RoleNotExist
	}
	if err := authz.ValidatePerms(req.Perms); err != nil {
		return err
	}
	now := e.opts.Now().Unix()
	key := rolePrefix + name
	it, err := e.st.Update(ctx, key, func(cur *store.Item) (*store.Item, error) {
		if cur == nil {
			return nil, apierror.RoleNotExist
		}
		var rec roleRecord
		if err := json.Unmarshal(cur.Value, &rec); err != nil {
			return nil, err
		}
		rec.Perms, rec.UpdateTime = nonNil(req.Perms), now
		return &store.Item{Value: store.EncodeJSON(&rec)}, nil
	})
	if err != nil {
		return apierror.FromStore(err)
	}
	return e.sync(ctx, key, it.Revision)
}

// DeleteRole deletes a role no account holds.
func (e *Engine) DeleteRole(ctx context.Context, c authz.Caller, name string) error {
	err := e.deleteRole(ctx, name)
	e.audit.Change(c.Account, c.IP, "role.delete", name, err)
	return err
}

func (e *Engine) deleteRole(ctx context.Context, name string) error {
	if isBuiltinRole(name) {
		return apierror.BuiltInRole
	}
	if !e.roles.Has(name) {
		return apierror.RoleNotExist
	}
	for _, a := range sortedByName(e.accounts, func(a *accountRecord) string { return a.Name }) {
		if slices.Contains(a.Roles, name) {
			return apierror.RoleIsBound.Detailf("role is bound to account %s", a.Name)
		}
	}
	key := rolePrefix + name
	it, err := e.st.Update(ctx, key, func(cur *store.Item) (*store.Item, error) {
		if cur == nil {
			return nil, apierror.RoleNotExist
		}
		return nil, nil
	})
	if err != nil {
		return apierror.FromStore(err)
	}
	return e.sync(ctx, key, it.Revision)
}

func nonNil(p []authz.Permission) []authz.Permission {
	if p == nil {
		return []authz.Permission{}
	}
	return p
}
