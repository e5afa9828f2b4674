package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/keyring"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/store"
)

// ErrNoRoot is ResetRoot's answer for a store without a root account:
// not a Gatehouse store, or not the one meant.
var ErrNoRoot = errors.New("the store holds no root account")

// ResetRoot is the break-glass recovery of root, working on the store
// itself rather than through a running server: it sets root's password,
// revokes every token root holds (the revocation watermark moves), clears
// root's failed logins and bans, and audits the reset as actor. Replicas
// running on the same store follow the change like any other. It never
// creates root: a store without one gives ErrNoRoot, and nothing is
// written to it.
func ResetRoot(ctx context.Context, st store.Store, hasher *password.Hasher, log *audit.Log, newPassword, actor string) error {
	if _, err := st.Get(ctx, accountPrefix+RootAccount); errors.Is(err, store.ErrNotFound) {
		return ErrNoRoot
	} else if err != nil {
		return err
	}
	err := resetRoot(ctx, st, hasher, newPassword)
	log.Change(actor, "", "account.reset-root", RootAccount, err)
	return err
}

func resetRoot(ctx context.Context, st store.Store, hasher *password.Hasher, newPassword string) error {
	if err := password.CheckNewAccountPassword(RootAccount, newPassword); err != nil {
		return fmt.Errorf("the new root password does not meet the password policy: %v", err)
	}
	hash, err := hasher.Hash(newPassword)
	if err != nil {
		return err
	}
	now := time.Now()
	if _, _, err := updateAccountRecord(ctx, st, RootAccount, func(r *accountRecord) error {
		r.PasswordHash = hash
		r.Status = StatusActive
		r.UpdateTime = now.Unix()
		r.revokeTokens(now.UnixMilli())
		return nil
	}); err != nil {
		return err
	}
	secret, err := keyring.SharedSecret(ctx, st, lockSecretName)
	if err != nil {
		return err
	}
	return (&Engine{st: st, lockSecret: secret}).deleteLocks(ctx, RootAccount)
}
