package engine

import (
	"encoding/json"
	"sort"
	"strconv"
	"sync"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Store key prefixes owned by the engine.
const (
	accountPrefix = "accounts/"
	rolePrefix    = "roles/"
	revokedPrefix = "revoked/"
	lockPrefix    = "locks/"
)

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

// Resource is one resource a permission applies to.
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

// roleRecord is the stored form of a role.
type roleRecord struct {
	ID         string       `json:"id"`
	Name       string       `json:"name"`
	Perms      []Permission `json:"perms"`
	CreateTime int64        `json:"createTime"`
	UpdateTime int64        `json:"updateTime"`
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

// jsonMarshal encodes a record; records are plain structs, so it cannot fail.
func jsonMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("engine: encode record: " + err.Error())
	}
	return b
}

// view is an in-memory mirror of one prefix of the store, decoded into
// records of type T and kept current by a store.Follower. Reads take a
// read lock only; the hot path of token verification reads these views.
type view[T any] struct {
	prefix string
	mu     sync.RWMutex
	items  map[string]*T
}

func newView[T any](prefix string) *view[T] {
	return &view[T]{prefix: prefix, items: map[string]*T{}}
}

func (v *view[T]) decode(it store.Item) (*T, bool) {
	rec := new(T)
	if err := json.Unmarshal(it.Value, rec); err != nil {
		return nil, false
	}
	return rec, true
}

// Reset implements store.Handler.
func (v *view[T]) Reset(items []store.Item) {
	m := make(map[string]*T, len(items))
	for _, it := range items {
		if rec, ok := v.decode(it); ok {
			m[it.Key[len(v.prefix):]] = rec
		}
	}
	v.mu.Lock()
	v.items = m
	v.mu.Unlock()
}

// Apply implements store.Handler.
func (v *view[T]) Apply(ev store.Event) {
	name := ev.Item.Key[len(v.prefix):]
	if ev.Type == store.EventDelete {
		v.mu.Lock()
		delete(v.items, name)
		v.mu.Unlock()
		return
	}
	rec, ok := v.decode(ev.Item)
	v.mu.Lock()
	if ok {
		v.items[name] = rec
	} else {
		delete(v.items, name)
	}
	v.mu.Unlock()
}

// get returns the record under name. Callers must not modify it.
func (v *view[T]) get(name string) (*T, bool) {
	v.mu.RLock()
	rec, ok := v.items[name]
	v.mu.RUnlock()
	return rec, ok
}

// has reports whether name is present.
func (v *view[T]) has(name string) bool {
	_, ok := v.get(name)
	return ok
}

// len returns the number of records.
func (v *view[T]) len() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.items)
}

// sorted returns every record, ordered by name. Callers must not modify them.
func (v *view[T]) sorted() []*T {
	v.mu.RLock()
	names := make([]string, 0, len(v.items))
	for n := range v.items {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]*T, len(names))
	for i, n := range names {
		out[i] = v.items[n]
	}
	v.mu.RUnlock()
	return out
}
