package etcd

import (
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestExpirySecond(t *testing.T) {
	base := time.Unix(1_800_000_000, 0)
	tests := []struct {
		expires, want time.Time
	}{
		{base, base},
		{base.Add(time.Nanosecond), base.Add(time.Second)},
		{base.Add(999 * time.Millisecond), base.Add(time.Second)},
		{base.Add(-time.Nanosecond), base},
	}
	for _, tc := range tests {
		if got := expirySecond(tc.expires); !got.Equal(tc.want) {
			t.Errorf("expirySecond(%v) = %v, want %v", tc.expires, got, tc.want)
		}
	}
}

func TestTTL(t *testing.T) {
	now := time.Unix(1_800_000_000, 250_000_000)
	tests := []struct {
		end  time.Time
		want int64
	}{
		{now.Add(-time.Hour), 1},
		{now, 1},
		{now.Add(750 * time.Millisecond), 1},
		{now.Add(1750 * time.Millisecond), 2},
		{now.Add(time.Hour), 3600},
		{now.Add(time.Hour + time.Millisecond), 3601},
		{time.Unix(1<<62, 0), clientv3.MaxLeaseTTL},
	}
	for _, tc := range tests {
		got := ttl(tc.end, now)
		if got != tc.want {
			t.Errorf("ttl(%v) = %d, want %d", tc.end.Sub(now), got, tc.want)
		}
		if end := now.Add(time.Duration(got) * time.Second); got < clientv3.MaxLeaseTTL && end.Before(tc.end) {
			t.Errorf("ttl(%v) = %d runs out before the end", tc.end.Sub(now), got)
		}
	}
}
