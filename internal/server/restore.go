package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/backup"
	"github.com/gatehouse/gatehouse/internal/store/etcd"
)

// Restore reads a backup (package backup) from r, verifies all of it and
// only then writes its items into the store cfg names: a bolt data
// directory no running server holds, or an etcd prefix. The store must be
// empty; with replace, a bolt store's items are deleted first. An etcd
// prefix is never replaced: replicas may be running on it.
func Restore(ctx context.Context, cfg Config, r io.Reader, replace bool) (_ backup.Header, _ backup.Result, err error) {
	onEtcd := storeBackend(cfg) == "etcd"
	if replace && onEtcd {
		return backup.Header{}, backup.Result{}, errors.New("--force does not apply to etcd: stop the replicas using the prefix, " +
			"empty it (etcdctl del --prefix PREFIX) and restore again")
	}
	h, items, err := backup.Read(r)
	if err != nil {
		return backup.Header{}, backup.Result{}, fmt.Errorf("%w; nothing was written", err)
	}
	st, _, err := openOffline(ctx, cfg, "restore")
	if err != nil {
		return h, backup.Result{}, err
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	res, err := backup.Restore(ctx, st, items, replace, time.Now())
	switch {
	case errors.Is(err, backup.ErrNotEmpty) && onEtcd:
		err = fmt.Errorf("etcd prefix %s: %w; restore into an empty prefix (stop the replicas using it and empty it with etcdctl del --prefix, or choose another --etcd-prefix)",
			etcd.PrefixOrDefault(cfg.EtcdPrefix), err)
	case errors.Is(err, backup.ErrNotEmpty):
		err = fmt.Errorf("%s: %w; restore into an empty data directory, or add --force to replace its contents", boltFile(cfg), err)
	case err != nil:
		err = fmt.Errorf("restore failed part way, the store may hold part of the backup: %w; fix the cause and restore again "+
			"(bolt: with --force; etcd: into the emptied prefix)", err)
	}
	return h, res, err
}
