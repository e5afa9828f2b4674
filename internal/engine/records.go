package engine

import (
	"encoding/hex"
	"sort"
	"strconv"

	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Store key prefixes owned by the engine.
const (
	accountPrefix = "accounts/"
	rolePrefix    = "roles/"
	revokedPrefix = "revoked/"
	lockPrefix    = "lockouts/"
	// legacyLockPrefix held lockout keys with the name in clear; see
	// dropLegacyLocks.
	legacyLockPrefix = "locks/"
)

// newRecordID returns the id of a new account or role in Service Center's
// form: a random UUID as 32 lower-case hex digits, without dashes.
// Records stored earlier keep the id they have.
func newRecordID() string {
	id := uuid.New()
	return hex.EncodeToString(id[:])
}

// Account statuses.
const (
	StatusActive   = "active"
	StatusInactive = "inactive"
)

// Account is an engine account as the API shows it. It never carries the
// password hash.
type Account struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Roles      []string `json:"roles"`
	Status     string   `json:"status"`
	CreateTime string   `json:"createTime"`
	UpdateTime string   `json:"updateTime"`
}

// accountRecord is the stored form of an account.
type accountRecord struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	PasswordHash string   `json:"passwordHash"`
	Roles        []string `json:"roles"`
	Status       string   `json:"status"`
	CreateTime   int64    `json:"createTime"`
	UpdateTime   int64    `json:"updateTime"`
	// RevokedBefore is the revocation watermark in unix milliseconds: every
	// token of this account issued at or before it is refused (see
	// issuedAtMs).
	RevokedBefore int64 `json:"revokedBeforeMs"`
}

// revokeTokens moves the revocation watermark to nowMs (unix
// milliseconds), refusing every token issued so far. A token issued in the
// millisecond of the previous watermark is stamped one past it (see
// Engine.issue), so the watermark always advances past that too.
func (a *accountRecord) revokeTokens(nowMs int64) {
	a.RevokedBefore = max(nowMs, a.RevokedBefore+1)
}

func (a *accountRecord) public() Account {
	return Account{
		ID:         a.ID,
		Name:       a.Name,
		Roles:      append([]string{}, a.Roles...),
		Status:     a.Status,
		CreateTime: strconv.FormatInt(a.CreateTime, 10),
		UpdateTime: strconv.FormatInt(a.UpdateTime, 10),
	}
}

// Role is a named set of permissions.
type Role struct {
	ID         string             `json:"id"`
	Name       string             `json:"name"`
	Perms      []authz.Permission `json:"perms"`
	CreateTime string             `json:"createTime"`
	UpdateTime string             `json:"updateTime"`
}

// roleRecord is the stored form of a role.
type roleRecord struct {
	ID         string             `json:"id"`
	Name       string             `json:"name"`
	Perms      []authz.Permission `json:"perms"`
	CreateTime int64              `json:"createTime"`
	UpdateTime int64              `json:"updateTime"`
}

func (r *roleRecord) public() Role {
	return Role{
		ID:         r.ID,
		Name:       r.Name,
		Perms:      r.Perms,
		CreateTime: strconv.FormatInt(r.CreateTime, 10),
		UpdateTime: strconv.FormatInt(r.UpdateTime, 10),
	}
}

// sortedByName returns the records of t ordered by name.
func sortedByName[T any](t *store.Table[T], name func(*T) string) []*T {
	recs := t.Values()
	sort.Slice(recs, func(i, j int) bool { return name(recs[i]) < name(recs[j]) })
	return recs
}
