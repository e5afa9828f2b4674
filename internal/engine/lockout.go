package engine

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/store"
)

// lockRecord holds the recent failures of one name::ip key. It lives in the
// store and is updated atomically, so replicas share one count.
type lockRecord struct {
	Failures    []int64 `json:"failures"` // unix nanoseconds, oldest first
	BannedUntil int64   `json:"bannedUntil,omitempty"`
}

// Lock statuses.
const (
	LockAttempted = "attempted"
	LockBanned    = "banned"
)

// Lock is the API view of a lockout key.
type Lock struct {
	Key       string `json:"key"`
	Status    string `json:"status"`
	ReleaseAt int64  `json:"releaseAt"`
}

// LockKey is the lockout key of a login attempt.
func LockKey(name, ip string) string { return name + "::" + authz.ClientKey(ip) }

// errNoChange aborts a store update that has nothing to change.
var errNoChange = errors.New("no change")

// reserveAttempt counts an attempt for key as a failure before its
// password is checked, so that concurrent guesses cannot all pass the ban
// check; a verified password takes it back with clearFailures. It answers
// AccountBlocked while the key is banned, and reports whether this attempt
// reached the threshold and banned the key.
func (e *Engine) reserveAttempt(ctx context.Context, key string) (banned bool, err error) {
	now := e.opts.Now()
	_, err = e.st.Update(ctx, lockPrefix+key, func(cur *store.Item) (*store.Item, error) {
		var rec lockRecord
		if cur != nil {
			_ = json.Unmarshal(cur.Value, &rec)
		}
		if rec.BannedUntil > now.UnixNano() {
			return nil, apierror.AccountBlocked
		}
		if rec.BannedUntil != 0 {
			rec.Failures = nil // a served ban starts a fresh count
		}
		cutoff := now.Add(-e.opts.LockoutWindow).UnixNano()
		kept := rec.Failures[:0:0]
		for _, f := range rec.Failures {
			if f > cutoff {
				kept = append(kept, f)
			}
		}
		rec = lockRecord{Failures: append(kept, now.UnixNano())}
		expires := now.Add(e.opts.LockoutWindow)
		banned = len(rec.Failures) >= e.opts.LockoutAttempts
		if banned {
			rec.BannedUntil = now.Add(e.opts.LockoutBan).UnixNano()
			expires = time.Unix(0, rec.BannedUntil)
		}
		val, _ := json.Marshal(rec)
		return &store.Item{Value: val, Expires: expires}, nil
	})
	return banned, apierror.FromStore(err)
}

// recordBan audits the ban of name::ip once the attempt that caused it
// failed. An empty name (that of an unknown account, which is not
// recorded) leaves the IP alone as the target.
func (e *Engine) recordBan(name, ip string) {
	target := ip
	if name != "" {
		target = LockKey(name, ip)
	}
	metrics.Lockouts.Inc()
	e.audit.Record(audit.Record{Actor: name, IP: ip, Action: "lockout", Target: target, Outcome: audit.Success,
		Detail: "banned for " + e.opts.LockoutBan.String()})
}

// clearFailures forgets the failures of key, the attempt reserved by
// reserveAttempt included, once a password was verified.
func (e *Engine) clearFailures(ctx context.Context, key string) error {
	err := e.st.Delete(ctx, lockPrefix+key)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return apierror.FromStore(err)
	}
	return nil
}

// Locks lists every lockout key with failures or a ban in force.
func (e *Engine) Locks(ctx context.Context) ([]Lock, error) {
	items, _, err := e.st.List(ctx, lockPrefix)
	if err != nil {
		return nil, apierror.FromStore(err)
	}
	now := e.opts.Now().UnixNano()
	out := []Lock{}
	for _, it := range items {
		var rec lockRecord
		if json.Unmarshal(it.Value, &rec) != nil || len(rec.Failures) == 0 {
			continue
		}
		l := Lock{Key: strings.TrimPrefix(it.Key, lockPrefix), Status: LockAttempted}
		if rec.BannedUntil > now {
			l.Status, l.ReleaseAt = LockBanned, rec.BannedUntil/1e9
		} else {
			l.ReleaseAt = (rec.Failures[0] + int64(e.opts.LockoutWindow)) / 1e9
		}
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// ClearLocks removes every lock and failure of the account name.
func (e *Engine) ClearLocks(ctx context.Context, c authz.Caller, name string) error {
	items, _, err := e.st.List(ctx, lockPrefix+name+"::")
	if err != nil {
		return apierror.FromStore(err)
	}
	for _, it := range items {
		if err := e.st.Delete(ctx, it.Key); err != nil && !errors.Is(err, store.ErrNotFound) {
			return apierror.FromStore(err)
		}
	}
	e.audit.Record(audit.Record{Actor: c.Account, IP: c.IP, Action: "lockout.clear", Target: name, Outcome: audit.Success})
	return nil
}
