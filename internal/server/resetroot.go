package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	bberrors "go.etcd.io/bbolt/errors"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/engine"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/bolt"
)

// ResetRoot opens the store of cfg as Start does and resets root's
// password there (engine.ResetRoot), audited as actor. A bolt store must
// not be held by a running server: bolt allows one process per file, so
// the reset is refused with a message saying so. An etcd store is shared,
// so replicas may run; they follow the change.
func ResetRoot(ctx context.Context, cfg Config, newPassword, actor string) (err error) {
	if cfg.Store == "" || cfg.Store == "bolt" {
		if _, err := os.Stat(boltFile(cfg)); err != nil {
			return fmt.Errorf("no Gatehouse store in %s: %w", cfg.DataDir, err)
		}
	}
	st, logger, err := openOffline(ctx, cfg, "reset-root")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	hasher, err := password.NewHasher(cfg.Argon2)
	if err != nil {
		return err
	}
	log := audit.New(st, logger, cfg.AuditRetention)
	defer log.Close()
	if err := engine.ResetRoot(ctx, st, hasher, log, newPassword, actor); errors.Is(err, engine.ErrNoRoot) {
		return fmt.Errorf("%w: is --data or --etcd-prefix the server's?", err)
	} else if err != nil {
		return err
	}
	return nil
}

// openOffline opens the store of cfg for the offline tool named tool and
// returns it with the logger it logs to: cfg.Logger, or one that discards
// everything when that is nil. A bolt file held by a running server is
// refused after half a second with a message saying to stop it.
func openOffline(ctx context.Context, cfg Config, tool string) (store.Store, *slog.Logger, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	st, err := OpenStore(ctx, cfg, logger, bolt.Options{LockTimeout: 500 * time.Millisecond})
	if errors.Is(err, bberrors.ErrTimeout) {
		return nil, nil, fmt.Errorf("%s is in use by a running Gatehouse: stop it first (with --store bolt, %s works on a stopped server only)", boltFile(cfg), tool)
	}
	return st, logger, err
}
