package etcd

import (
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestLeaseEnd(t *testing.T) {
	base := time.Unix(439_453*4096, 0) // a multiple of 4096 s
	now := base.Add(-time.Hour)
	tests := []struct {
		name         string
		expires, now time.Time
		want         time.Time
	}{
		{"whole second", base, base.Add(-time.Minute), base},
		{"rounds up to the second", base.Add(time.Nanosecond), base.Add(-time.Minute), base.Add(time.Second)},
		{"just before", base.Add(-time.Nanosecond), base.Add(-time.Minute), base},
		{"past expiry", base.Add(time.Millisecond), base.Add(time.Hour), base.Add(time.Second)},
		{"an hour away: 16 s buckets", base.Add(time.Second), now, base.Add(16 * time.Second)},
		{"30 days away: capped width", base.Add(time.Second), base.Add(-30 * 24 * time.Hour), base.Add(maxLeaseWidth)},
	}
	for _, tc := range tests {
		got := leaseEnd(tc.expires, tc.now)
		if !got.Equal(tc.want) {
			t.Errorf("%s: leaseEnd = %v, want %v", tc.name, got, tc.want)
		}
		if got.Before(tc.expires) {
			t.Errorf("%s: lease ends before the item expires", tc.name)
		}
	}
	// A month of audit records written once a second needs few leases.
	ends := map[int64]bool{}
	for i := range 30 * 24 * 3600 {
		w := base.Add(time.Duration(i) * time.Second)
		ends[leaseEnd(w.Add(30*24*time.Hour), w).Unix()] = true
	}
	if len(ends) > 700 {
		t.Errorf("a month of 30-day expiries needs %d leases", len(ends))
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
