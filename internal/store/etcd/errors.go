package etcd

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gatehouse/gatehouse/internal/store"
)

// mapError turns the error of a request made for a caller with ctx into
// the store's terms: store.ErrClosed after Close, the caller's own context
// error, store.ErrUnavailable (wrapping the cause's text) when the cluster
// could not answer in time or has no leader or quorum, and other errors
// as they are.
func (s *Store) mapError(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case s.closed.Load():
		return store.ErrClosed
	case ctx.Err() != nil:
		return ctx.Err()
	case unavailable(err):
		return fmt.Errorf("%w: %v", store.ErrUnavailable, err)
	}
	return fmt.Errorf("etcd: %w", err)
}

// raftStopped is what a member whose raft node has stopped (it is
// shutting down) answers: etcd passes raft's error on untyped, as
// codes.Unknown with this description.
const raftStopped = "raft: stopped"

// unavailable reports whether err says the cluster could not serve the
// request: a timeout, no connection, no leader, a leader change, an
// overloaded or full cluster, a member shutting down (whose stopped raft
// node answers with an untyped error).
func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if rpctypes.ErrorDesc(err) == raftStopped {
		return true
	}
	code := status.Code(err)
	var etcdErr rpctypes.EtcdError
	if errors.As(err, &etcdErr) {
		code = etcdErr.Code()
	}
	switch code {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
		return true
	}
	return false
}
