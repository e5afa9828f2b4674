package engine

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/store"
)

// interposing is a store that runs before once, just before the first
// Update of key: a write that lands between a check and the write it
// guards.
type interposing struct {
	store.Store
	key    string
	once   sync.Once
	before func()
}

func (s *interposing) Update(ctx context.Context, key string, fn store.UpdateFunc) (store.Item, error) {
	if key == s.key {
		s.once.Do(s.before)
	}
	return s.Store.Update(ctx, key, fn)
}

// A change of one's own password checked against a password that an
// admin replaced meanwhile fails, and the admin's password stands.
func TestChangeOwnPasswordAfterReset(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	e.mkAccount(t, "frank", "Passw0rd!f")
	const reset = "Passw0rd!reset"
	e.Engine.st = &interposing{Store: e.st, key: accountPrefix + "frank", before: func() {
		hash, err := e.hasher.Hash(reset)
		if err != nil {
			t.Error(err)
			return
		}
		_, err = e.st.Update(bg, accountPrefix+"frank", func(cur *store.Item) (*store.Item, error) {
			var rec accountRecord
			if err := json.Unmarshal(cur.Value, &rec); err != nil {
				return nil, err
			}
			rec.PasswordHash = hash
			return &store.Item{Value: store.EncodeJSON(&rec)}, nil
		})
		if err != nil {
			t.Error(err)
		}
	}}
	frank := authz.Caller{Account: "frank", Roles: []string{DeveloperRole}, IP: "192.0.2.4"}
	err := e.ChangePassword(bg, frank, "frank", ChangePasswordRequest{CurrentPassword: "Passw0rd!f", Password: "Passw0rd!mine"})
	wantCode(t, err, "401207")
	if _, err := e.Login(bg, LoginRequest{Name: "frank", Password: "Passw0rd!mine"}, frank.IP); err == nil {
		t.Fatal("the change undid the admin's reset")
	}
	e.login(t, "frank", reset)
}
