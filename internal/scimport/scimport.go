// Package scimport reads the RBAC data of Apache ServiceComb Service
// Center (accounts, roles and account locks, as SC keeps them in its etcd)
// from a live etcd or from a dump, and maps it to the engine's import
// records. Writing them is the engine's business (engine.Import).
package scimport

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/engine"
	"github.com/gatehouse/gatehouse/internal/keyring"
	"github.com/gatehouse/gatehouse/internal/store"
)

// DefaultPrefix is the key prefix of Service Center's data in etcd.
const DefaultPrefix = "/cse-sr/"

// KV is one etcd key and its value, the element of a dump:
// [{"key": ..., "value": ...}].
type KV struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// ReadDump decodes a dump: a JSON array of {"key","value"} objects.
func ReadDump(r io.Reader) ([]KV, error) {
	var kvs []KV
	if err := json.NewDecoder(r).Decode(&kvs); err != nil {
		return nil, fmt.Errorf("dump: %w", err)
	}
	return kvs, nil
}

// EtcdSource names a live Service Center etcd.
type EtcdSource struct {
	Endpoints []string
	Prefix    string      // [DefaultPrefix]
	TLS       *tls.Config // nil: plain connections
}

// ReadEtcd reads every key under src.Prefix from a live etcd, in one
// consistent read.
func ReadEtcd(ctx context.Context, src EtcdSource) ([]KV, error) {
	client, err := clientv3.New(clientv3.Config{Endpoints: src.Endpoints, TLS: src.TLS, DialTimeout: 10 * time.Second,
		Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("etcd %s: %w", strings.Join(src.Endpoints, ","), err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	resp, err := client.Get(ctx, prefixOr(src.Prefix), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("etcd %s: read %s: %w", strings.Join(src.Endpoints, ","), prefixOr(src.Prefix), err)
	}
	kvs := make([]KV, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		kvs[i] = KV{Key: string(kv.Key), Value: string(kv.Value)}
	}
	return kvs, nil
}

func prefixOr(p string) string {
	if p == "" {
		return DefaultPrefix
	}
	return p
}

// Parsed is the RBAC data found in Service Center's keys.
type Parsed struct {
	Records engine.ImportRecords
	// Skipped counts the keys Gatehouse does not import: the service
	// registry and SC's own bookkeeping (role index, markers).
	Skipped int
	// SkippedLocks are the account-lock keys (name::ip) that hold no ban,
	// only attempts: Gatehouse counts attempts afresh.
	SkippedLocks []string
}

// Service Center's record layouts under its prefix.
const (
	accountsDir = "accounts/"
	rolesDir    = "roles/"
	locksDir    = "account-locks/"
)

// scAccount is an account as Service Center stores it.
type scAccount struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Password   string   `json:"password"`
	Roles      []string `json:"roles"`
	Status     string   `json:"status"`
	CreateTime string   `json:"createTime"`
	UpdateTime string   `json:"updateTime"`
}

// scRole is a role as Service Center stores it.
type scRole struct {
	ID         string             `json:"id"`
	Name       string             `json:"name"`
	Perms      []authz.Permission `json:"perms"`
	CreateTime string             `json:"createTime"`
	UpdateTime string             `json:"updateTime"`
}

// scLock is an account lock as Service Center stores it; releaseAt is in
// unix seconds.
type scLock struct {
	Key       string `json:"key"`
	Status    string `json:"status"`
	ReleaseAt int64  `json:"releaseAt"`
}

// Parse maps the keys of a Service Center etcd under prefix to import
// records. A record that cannot be read is an error naming its key.
func Parse(kvs []KV, prefix string) (Parsed, error) {
	prefix = prefixOr(prefix)
	var p Parsed
	for _, kv := range kvs {
		rest, ok := strings.CutPrefix(kv.Key, prefix)
		if !ok {
			p.Skipped++
			continue
		}
		var err error
		switch {
		case strings.HasPrefix(rest, accountsDir):
			err = p.account(strings.TrimPrefix(rest, accountsDir), kv.Value)
		case strings.HasPrefix(rest, rolesDir):
			err = p.role(strings.TrimPrefix(rest, rolesDir), kv.Value)
		case strings.HasPrefix(rest, locksDir):
			err = p.lock(strings.TrimPrefix(rest, locksDir), kv.Value)
		default:
			p.Skipped++
		}
		if err != nil {
			return Parsed{}, fmt.Errorf("%s: %w", kv.Key, err)
		}
	}
	return p, nil
}

func (p *Parsed) account(name, value string) error {
	var a scAccount
	if err := json.Unmarshal([]byte(value), &a); err != nil {
		return fmt.Errorf("account record: %w", err)
	}
	if a.Name != name {
		return fmt.Errorf("account record names %q", a.Name)
	}
	created, updated, err := times(a.CreateTime, a.UpdateTime)
	if err != nil {
		return err
	}
	p.Records.Accounts = append(p.Records.Accounts, engine.ImportedAccount{ID: a.ID, Name: a.Name, PasswordHash: a.Password,
		Roles: a.Roles, Status: a.Status, CreateTime: created, UpdateTime: updated})
	return nil
}

func (p *Parsed) role(name, value string) error {
	var r scRole
	if err := json.Unmarshal([]byte(value), &r); err != nil {
		return fmt.Errorf("role record: %w", err)
	}
	if r.Name != name {
		return fmt.Errorf("role record names %q", r.Name)
	}
	created, updated, err := times(r.CreateTime, r.UpdateTime)
	if err != nil {
		return err
	}
	p.Records.Roles = append(p.Records.Roles, engine.ImportedRole{ID: r.ID, Name: r.Name, Perms: r.Perms,
		CreateTime: created, UpdateTime: updated})
	return nil
}

func (p *Parsed) lock(key, value string) error {
	var l scLock
	if err := json.Unmarshal([]byte(value), &l); err != nil {
		return fmt.Errorf("account lock record: %w", err)
	}
	if l.Status != engine.LockBanned {
		p.SkippedLocks = append(p.SkippedLocks, key)
		return nil
	}
	name, ip, ok := strings.Cut(key, "::")
	if !ok || name == "" || ip == "" {
		return fmt.Errorf("account lock key is not name::ip")
	}
	p.Records.Locks = append(p.Records.Locks, engine.ImportedLock{Name: name, IP: ip, ReleaseAt: time.Unix(l.ReleaseAt, 0)})
	return nil
}

// times parses SC's createTime and updateTime, unix seconds as strings
// (empty: 0).
func times(create, update string) (int64, int64, error) {
	var out [2]int64
	for i, s := range []string{create, update} {
		if s == "" {
			continue
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("time %q is not unix seconds", s)
		}
		out[i] = v
	}
	return out[0], out[1], nil
}

// Options configure Import.
type Options struct {
	Prefix        string // SC's key prefix [DefaultPrefix]
	PrivateKeyPEM []byte // SC's signing key (PKCS#1 or PKCS#8 PEM); nil: none
	Overwrite     bool   // replace conflicting records
	DryRun        bool   // write nothing
	Now           func() time.Time
}

// Summary is the outcome of Import.
type Summary struct {
	engine.ImportReport
	// Key is the outcome of the key import; nil without a key.
	Key    *keyring.ImportResult
	Parsed Parsed
	DryRun bool
}

// Import maps kvs (Service Center's keys) to records and writes them
// into st with engine.Import, then imports SC's signing key, if given, as
// the active key of st's key ring. On error the summary holds what was
// done up to the failed record, which the error names.
func Import(ctx context.Context, st store.Store, kvs []KV, opts Options) (Summary, error) {
	sum := Summary{DryRun: opts.DryRun}
	var err error
	if sum.Parsed, err = Parse(kvs, opts.Prefix); err != nil {
		return sum, err
	}
	sum.ImportReport, err = engine.Import(ctx, st, sum.Parsed.Records,
		engine.ImportOptions{Overwrite: opts.Overwrite, DryRun: opts.DryRun, Now: opts.Now})
	if err != nil {
		return sum, err
	}
	if opts.PrivateKeyPEM != nil {
		res, err := keyring.Import(ctx, st, keyring.Options{PrivateKeyPEM: opts.PrivateKeyPEM, Now: opts.Now,
			MaxTokenLifetime: engine.MaxRequestedTTL + engine.MaxLeeway}, opts.DryRun)
		if err != nil {
			return sum, fmt.Errorf("signing key: %w", err)
		}
		sum.Key = &res
	}
	return sum, nil
}

// Changed reports whether the import wrote (or, dry, would write)
// anything.
func (s Summary) Changed() bool {
	return s.ImportReport.Changed() || (s.Key != nil && s.Key.Outcome == keyring.ImportActivated)
}

// Write prints the summary: counts per kind, every conflict and skipped
// record, the key's outcome. It never prints a hash or key material.
func (s Summary) Write(w io.Writer) {
	if s.DryRun {
		fmt.Fprintln(w, "dry run: nothing was written; this is what an import would do")
	}
	for _, kind := range []string{"role", "account", "lock"} {
		fmt.Fprintf(w, "%ss: %d created, %d replaced, %d unchanged, %d conflicts, %d skipped\n", kind,
			s.Count(kind, engine.ImportCreated), s.Count(kind, engine.ImportReplaced), s.Count(kind, engine.ImportUnchanged),
			s.Count(kind, engine.ImportConflict), s.Count(kind, engine.ImportSkipped)+skippedLocks(kind, s.Parsed))
	}
	for _, r := range s.Results {
		if r.Outcome == engine.ImportConflict || r.Outcome == engine.ImportSkipped || r.Outcome == engine.ImportReplaced {
			fmt.Fprintf(w, "  %s %s %s: %s\n", r.Outcome, r.Kind, r.Name, r.Detail)
		}
	}
	for _, k := range s.Parsed.SkippedLocks {
		fmt.Fprintf(w, "  skipped lock %s: attempts only, no ban\n", k)
	}
	switch {
	case s.Key == nil:
		fmt.Fprintln(w, "key: none given (--sc-private-key); tokens Service Center issued will not verify")
	case s.Key.Outcome == keyring.ImportActivated:
		fmt.Fprintf(w, "key: %s is the active signing key\n", s.Key.ID)
	case s.Key.Outcome == keyring.ImportPresent:
		fmt.Fprintf(w, "key: %s is already in the key ring; unchanged\n", s.Key.ID)
	default:
		fmt.Fprintf(w, "key: %s was rotated out and has expired; not used again\n", s.Key.ID)
	}
	fmt.Fprintf(w, "skipped %d keys Gatehouse does not own (service registry and others)\n", s.Parsed.Skipped)
	if !s.Changed() {
		fmt.Fprintln(w, "nothing to change: the store already holds everything imported")
	}
}

func skippedLocks(kind string, p Parsed) int {
	if kind == "lock" {
		return len(p.SkippedLocks)
	}
	return 0
}
