package etcd

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestUnavailable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{context.DeadlineExceeded, true},
		{fmt.Errorf("txn: %w", context.DeadlineExceeded), true},
		{status.Error(codes.Unavailable, "connection refused"), true},
		{status.Error(codes.DeadlineExceeded, "deadline"), true},
		{rpctypes.ErrNoLeader, true},
		{rpctypes.ErrLeaderChanged, true},
		{rpctypes.ErrTimeout, true},
		{rpctypes.ErrTooManyRequests, true},
		{rpctypes.ErrNoSpace, true},
		{status.Error(codes.Unknown, "raft: stopped"), true},
		{rpctypes.ErrLeaseNotFound, false},
		{rpctypes.ErrCompacted, false},
		{status.Error(codes.InvalidArgument, "bad"), false},
		{context.Canceled, false},
		{errors.New("other"), false},
	}
	for _, tc := range tests {
		if got := unavailable(tc.err); got != tc.want {
			t.Errorf("unavailable(%v) = %t, want %t", tc.err, got, tc.want)
		}
	}
}
