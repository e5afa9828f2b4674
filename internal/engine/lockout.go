package engine

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
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

// lockRecord holds the recent failures of one lockout key. It lives in the
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

// Lock is the API view of a lockout key: Key is name::client, the name
// masked (see maskedName) unless it is an account's.
type Lock struct {
	Key       string `json:"key"`
	Status    string `json:"status"`
	ReleaseAt int64  `json:"releaseAt"`
}

// lockSecretName names the shared secret that keys the hash of the names
// in lockout keys.
const lockSecretName = "lockout-names"

// nameHash is what a name typed at login is kept as: a name that is no
// account may be a password typed into the wrong field, so it is never
// stored in clear. It is an HMAC-SHA256 under a secret shared by every
// replica (so they agree on the key), the first 16 bytes in hex.
func (e *Engine) nameHash(name string) string { return nameHash(e.lockSecret, name) }

func nameHash(secret []byte, name string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(name))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// lockKey is the store key, after lockPrefix, of the attempts of name
// from ip.
func (e *Engine) lockKey(name, ip string) string { return lockKey(e.lockSecret, name, ip) }

func lockKey(secret []byte, name, ip string) string {
	return nameHash(secret, name) + "::" + authz.ClientKey(ip)
}

// maskedName shows the name of hash h: "***" and the first 8 hex digits
// of h, enough to tell keys apart and to match the name an admin types.
func maskedName(h string) string { return "***" + h[:min(8, len(h))] }

// shownName is how a typed name appears in lists, audit records and logs:
// as is when it is an account, else masked.
func (e *Engine) shownName(name string) string {
	if e.accounts.Has(name) {
		return name
	}
	return maskedName(e.nameHash(name))
}

// errNoChange aborts a store update that has nothing to change.
var errNoChange = errors.New("no change")

// attempt is one password check of name from ip, counted toward lockout
// under key. A nil attempt (a name no account can have) counts nothing.
type attempt struct {
	e         *Engine
	name, ip  string
	key       string
	hadFailed bool // the key held failures when the check began
}

// startAttempt begins a password check: it answers AccountBlocked while
// the key is banned. It only reads the store, so that correct passwords,
// however many at once, are never counted.
func (e *Engine) startAttempt(ctx context.Context, name, ip string) (*attempt, error) {
	a := &attempt{e: e, name: name, ip: ip, key: e.lockKey(name, ip)}
	it, err := e.st.Get(ctx, lockPrefix+a.key)
	if errors.Is(err, store.ErrNotFound) {
		return a, nil
	}
	if err != nil {
		return nil, apierror.FromStore(err)
	}
	var rec lockRecord
	_ = json.Unmarshal(it.Value, &rec)
	if rec.BannedUntil > e.opts.Now().UnixNano() {
		return nil, apierror.AccountBlocked
	}
	a.hadFailed = len(rec.Failures) > 0
	return a, nil
}

// fail counts the attempt as a failure, atomically. The failure that
// reaches the threshold bans the key and is audited as a lockout. If
// failures recorded since the check banned the key meanwhile, it answers
// AccountBlocked: of concurrent wrong guesses, exactly LockoutAttempts are
// answered as wrong.
func (a *attempt) fail(ctx context.Context) error {
	if a == nil {
		return nil
	}
	e := a.e
	now := e.opts.Now()
	banned := false
	_, err := e.st.Update(ctx, lockPrefix+a.key, func(cur *store.Item) (*store.Item, error) {
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
	if err != nil {
		return apierror.FromStore(err)
	}
	if banned {
		e.recordBan(a.name, a.ip)
	}
	return nil
}

// succeed forgets the failures of the key once a password was verified,
// unless failures of concurrent attempts banned it meanwhile.
func (a *attempt) succeed(ctx context.Context) error {
	if a == nil || !a.hadFailed {
		return nil
	}
	now := a.e.opts.Now().UnixNano()
	_, err := a.e.st.Update(ctx, lockPrefix+a.key, func(cur *store.Item) (*store.Item, error) {
		if cur == nil {
			return nil, errNoChange
		}
		var rec lockRecord
		if json.Unmarshal(cur.Value, &rec) == nil && rec.BannedUntil > now {
			return nil, errNoChange
		}
		return nil, nil
	})
	if err != nil && !errors.Is(err, errNoChange) {
		return apierror.FromStore(err)
	}
	return nil
}

// recordBan audits the ban of the key of name and ip. The name is the
// actor only when it is an account's.
func (e *Engine) recordBan(name, ip string) {
	actor, shown := "", e.shownName(name)
	if shown == name {
		actor = name
	}
	metrics.Lockouts.Inc()
	e.audit.Record(audit.Record{Actor: actor, IP: ip, Action: "lockout", Target: shown + "::" + authz.ClientKey(ip), Outcome: audit.Success,
		Detail: "banned for " + e.opts.LockoutBan.String()})
}

// Locks lists every lockout key with failures or a ban in force.
func (e *Engine) Locks(ctx context.Context) ([]Lock, error) {
	items, _, err := e.st.List(ctx, lockPrefix)
	if err != nil {
		return nil, apierror.FromStore(err)
	}
	out := []Lock{}
	if len(items) == 0 {
		return out, nil
	}
	names := map[string]string{}
	for _, a := range e.accounts.Values() {
		names[e.nameHash(a.Name)] = a.Name
	}
	now := e.opts.Now().UnixNano()
	for _, it := range items {
		var rec lockRecord
		if json.Unmarshal(it.Value, &rec) != nil || len(rec.Failures) == 0 {
			continue
		}
		h, client, _ := strings.Cut(strings.TrimPrefix(it.Key, lockPrefix), "::")
		name, ok := names[h]
		if !ok {
			name = maskedName(h)
		}
		l := Lock{Key: name + "::" + client, Status: LockAttempted}
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

// ClearLocks removes every lock and failure of the name typed at login,
// an account's or not.
func (e *Engine) ClearLocks(ctx context.Context, c authz.Caller, name string) error {
	if err := e.deleteLocks(ctx, name); err != nil {
		return err
	}
	e.audit.Record(audit.Record{Actor: c.Account, IP: c.IP, Action: "lockout.clear", Target: e.shownName(name), Outcome: audit.Success})
	return nil
}

// deleteLocks deletes every lockout key of name.
func (e *Engine) deleteLocks(ctx context.Context, name string) error {
	items, _, err := e.st.List(ctx, lockPrefix+e.nameHash(name)+"::")
	if err != nil {
		return apierror.FromStore(err)
	}
	for _, it := range items {
		if err := e.st.Delete(ctx, it.Key); err != nil && !errors.Is(err, store.ErrNotFound) {
			return apierror.FromStore(err)
		}
	}
	return nil
}

// dropLegacyLocks deletes the lockout keys of earlier versions, which held
// the name in clear under legacyLockPrefix. They would expire within the
// lockout window or ban anyway; until then they are neither counted nor
// listed.
func (e *Engine) dropLegacyLocks(ctx context.Context) error {
	items, _, err := e.st.List(ctx, legacyLockPrefix)
	if err != nil {
		return err
	}
	for _, it := range items {
		if err := e.st.Delete(ctx, it.Key); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}
