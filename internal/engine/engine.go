// Package engine owns the engine (/v4) domain of Gatehouse, wire-compatible
// with Apache ServiceComb Service Center's RBAC: accounts, roles and
// permissions, the password policy, lockout, and the issue, verification
// and revocation of RS512 engine tokens. It knows nothing of HTTP; errors
// are apierror values.
package engine

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/keyring"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/tokencache"
	"github.com/gatehouse/gatehouse/pkg/jwtform"
)

// Signer signs and verifies engine tokens; *keyring.Ring implements it.
// Withdrawn changes whenever a key stops verifying: tokens cached as
// verified before it changed are verified again.
type Signer interface {
	Sign(claims jwt.Claims) (string, error)
	Keyfunc(t *jwt.Token) (any, error)
	Withdrawn() uint64
}

// Options configure an Engine. Zero values take the defaults.
type Options struct {
	TokenTTL        time.Duration // default lifetime of an engine token [12h]
	Leeway          time.Duration // clock skew tolerated on exp [0, at most 60s]
	LockoutAttempts int           // failures that ban a name::ip key [3]
	LockoutWindow   time.Duration // window in which failures count [15m]
	LockoutBan      time.Duration // ban duration [15m]
	MaxAccounts     int           // account quota [10000]
	MaxRoles        int           // role quota [100]
	CacheSize       int           // verified-token cache entries [65536]
	RootPassword    string        // root password on first start; generated when empty
	PasswordOut     io.Writer     // where a generated root password is printed [os.Stderr]
	// RootPasswordFile, when set, is where a generated root password is
	// also written (mode 0600); it is deleted once root's password is
	// another, on this server or, found at start, on another one.
	RootPasswordFile string
	// Issuer, when set, is the iss claim of every token issued. Tokens
	// are not checked for it: those of Service Center and of servers
	// without an issuer carry none.
	Issuer string
	Now    func() time.Time
	// Keys, when set, are announced on the revocation feed.
	Keys KeyAnnouncer
}

// Token lifetime bounds for tokenExpirationTime in a login request.
const (
	MinRequestedTTL = 15 * time.Minute
	MaxRequestedTTL = jwtform.MaxLifetime
	// MaxLeeway bounds Options.Leeway.
	MaxLeeway = time.Minute
)

func (o *Options) defaults() error {
	if o.TokenTTL == 0 {
		o.TokenTTL = 12 * time.Hour
	}
	if o.TokenTTL < 0 || o.TokenTTL > MaxRequestedTTL {
		return fmt.Errorf("token TTL %s outside (0, %s]", o.TokenTTL, MaxRequestedTTL)
	}
	if o.Leeway < 0 || o.Leeway > MaxLeeway {
		return fmt.Errorf("leeway %s outside [0, %s]", o.Leeway, MaxLeeway)
	}
	if o.LockoutAttempts <= 0 {
		o.LockoutAttempts = 3
	}
	if o.LockoutWindow <= 0 {
		o.LockoutWindow = 15 * time.Minute
	}
	if o.LockoutBan <= 0 {
		o.LockoutBan = 15 * time.Minute
	}
	if o.MaxAccounts <= 0 {
		o.MaxAccounts = 10000
	}
	if o.MaxRoles <= 0 {
		o.MaxRoles = 100
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 1 << 16
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PasswordOut == nil {
		o.PasswordOut = os.Stderr
	}
	return nil
}

// Engine is the /v4 domain. It is safe for concurrent use.
type Engine struct {
	opts   Options
	st     store.Store
	signer Signer
	hasher *password.Hasher
	audit  *audit.Log
	logger *slog.Logger
	// lockSecret keys the hash of the names in lockout keys.
	lockSecret []byte

	accounts *store.Table[accountRecord]
	roles    *store.Table[roleRecord]
	revoked  *store.Table[revokedRecord]
	cache    *tokencache.Cache[verified]
	feed     *Feed
}

// verified is an entry of the verified-token cache: the claims of a token
// whose signature was valid while the signer's Withdrawn count was
// withdrawn.
type verified struct {
	claims    *Claims
	withdrawn uint64
}

// revokedRecord is a denylisted token id, kept until the token's exp.
type revokedRecord struct {
	Exp int64 `json:"exp"`
}

// New loads the engine's state from st, follows its changes, creates the
// built-in roles and, on first start, the root account.
func New(ctx context.Context, st store.Store, signer Signer, hasher *password.Hasher, log *audit.Log, logger *slog.Logger, opts Options) (*Engine, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	e := &Engine{
		opts: opts, st: st, signer: signer, hasher: hasher, audit: log, logger: logger,
		accounts: store.NewTable(accountPrefix, store.DecodeJSON[accountRecord]),
		roles:    store.NewTable(rolePrefix, store.DecodeJSON[roleRecord]),
		revoked:  store.NewTable(revokedPrefix, store.DecodeJSON[revokedRecord]),
		cache:    newClaimsCache(opts.CacheSize),
	}
	var err error
	if e.lockSecret, err = keyring.SharedSecret(ctx, st, lockSecretName); err != nil {
		return nil, err
	}
	if err := e.dropLegacyLocks(ctx); err != nil {
		return nil, fmt.Errorf("drop legacy lockout keys: %w", err)
	}
	e.feed = newFeed(ctx, opts.Keys, opts.Now, e.accounts, e.revoked)
	if err := e.accounts.Follow(ctx, st, e.feed.source(srcAccounts)); err != nil {
		return nil, err
	}
	if err := e.roles.Follow(ctx, st); err != nil {
		return nil, err
	}
	if err := e.revoked.Follow(ctx, st, e.feed.source(srcRevoked)); err != nil {
		return nil, err
	}
	if err := e.bootstrap(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// newClaimsCache returns the verified-token cache of engine tokens.
func newClaimsCache(size int) *tokencache.Cache[verified] {
	return tokencache.New(size, func(v verified) time.Time { return v.claims.ExpiresAt.Time })
}

// Healthy reports whether every in-memory view is connected to the store.
func (e *Engine) Healthy() bool {
	return e.accounts.Healthy() && e.roles.Healthy() && e.revoked.Healthy()
}

// Feed returns the revocation feed: what verifiers outside Gatehouse
// need to refuse revoked tokens (GET /v4/revocations).
func (e *Engine) Feed() *Feed { return e.feed }

// bootstrap creates the built-in roles and the root account if missing.
func (e *Engine) bootstrap(ctx context.Context) error {
	now := e.opts.Now().Unix()
	for _, name := range []string{AdminRole, DeveloperRole} {
		if err := e.ensureBuiltinRole(ctx, name, now); err != nil {
			return fmt.Errorf("create role %s: %w", name, err)
		}
	}
	if root, ok := e.accounts.Get(RootAccount); ok {
		e.dropStalePasswordFile(root.PasswordHash)
		return nil
	}
	pw, generated := e.opts.RootPassword, false
	if pw == "" {
		pw, generated = generatePassword(), true
	}
	if err := password.CheckNewAccountPassword(RootAccount, pw); err != nil {
		return fmt.Errorf("root password does not meet the password policy: %v", err)
	}
	hash, err := e.hasher.Hash(pw)
	if err != nil {
		return err
	}
	// The file is written before root is: a root whose generated password
	// could not be kept is never created.
	if generated && e.opts.RootPasswordFile != "" {
		if err := writePasswordFile(e.opts.RootPasswordFile, pw); err != nil {
			return fmt.Errorf("root password file: %w", err)
		}
	}
	rec := accountRecord{ID: newRecordID(), Name: RootAccount, PasswordHash: hash, Roles: []string{AdminRole},
		Status: StatusActive, CreateTime: now, UpdateTime: now,
		// Tokens of an earlier root, removed from the store, stay revoked.
		RevokedBefore: e.opts.Now().UnixMilli()}
	if _, err := e.create(ctx, accountPrefix+RootAccount, rec); err != nil {
		if generated {
			e.removePasswordFile()
		}
		if errors.Is(err, store.ErrExists) {
			return nil // another replica bootstrapped first
		}
		return fmt.Errorf("create root: %w", err)
	}
	if generated {
		e.logger.Warn("generated the root password; it is shown only on stderr, once, and kept in the root password file until root changes it",
			"file", e.opts.RootPasswordFile)
		fmt.Fprintf(e.opts.PasswordOut, "gatehouse: root account created with generated password: %s\n", pw)
		if e.opts.RootPasswordFile != "" {
			fmt.Fprintf(e.opts.PasswordOut, "gatehouse: the password is also in %s (readable only by its owner), deleted when root changes its password\n", e.opts.RootPasswordFile)
		}
	}
	e.audit.Record(audit.Record{Actor: "gatehouse", Action: "account.create", Target: RootAccount, Outcome: audit.Success})
	return nil
}

// ensureBuiltinRole creates the built-in role name, or sets the
// permissions of a stored one to this version's (keeping its id and
// creation time) when they differ: built-in roles cannot be changed
// through the API, so a stored set other than builtinPerms comes from an
// earlier version or an imported Service Center store.
func (e *Engine) ensureBuiltinRole(ctx context.Context, name string, now int64) error {
	want := builtinPerms(name)
	if r, ok := e.roles.Get(name); ok && reflect.DeepEqual(r.Perms, want) {
		return nil
	}
	key := rolePrefix + name
	it, err := e.st.Update(ctx, key, func(cur *store.Item) (*store.Item, error) {
		rec := roleRecord{ID: newRecordID(), Name: name, CreateTime: now}
		if cur != nil {
			if err := json.Unmarshal(cur.Value, &rec); err != nil {
				return nil, err
			}
			if reflect.DeepEqual(rec.Perms, want) {
				return cur, nil
			}
		}
		rec.Perms, rec.UpdateTime = want, now
		return &store.Item{Value: store.EncodeJSON(&rec)}, nil
	})
	if err != nil {
		return err
	}
	return e.sync(ctx, key, it.Revision)
}

// generatePassword returns a 24-character password that satisfies the
// policy: random characters from all four classes.
func generatePassword() string {
	const (
		upper   = "ABCDEFGHJKLMNPQRSTUVWXYZ"
		lower   = "abcdefghijkmnopqrstuvwxyz"
		digits  = "23456789"
		special = "!#%+-.:=@^_~"
	)
	all := upper + lower + digits + special
	pick := func(set string) byte {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(set))))
		if err != nil {
			panic(err) // crypto/rand does not fail on supported platforms
		}
		return set[n.Int64()]
	}
	b := []byte{pick(upper), pick(lower), pick(digits), pick(special)}
	for len(b) < 24 {
		b = append(b, pick(all))
	}
	for i := len(b) - 1; i > 0; i-- { // shuffle so the classes are not in fixed places
		j, _ := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
		b[i], b[j.Int64()] = b[j.Int64()], b[i]
	}
	return string(b)
}

// create stores rec under key if absent and waits until the local view has it.
func (e *Engine) create(ctx context.Context, key string, rec any) (store.Item, error) {
	it, err := e.st.Create(ctx, store.Item{Key: key, Value: store.EncodeJSON(rec)})
	if err != nil {
		return it, err
	}
	return it, e.sync(ctx, key, it.Revision)
}

// sync waits until the table that mirrors key applied revision rev, so a
// write is visible to the next request on this replica.
func (e *Engine) sync(ctx context.Context, key string, rev int64) error {
	var err error
	switch {
	case strings.HasPrefix(key, accountPrefix):
		err = e.accounts.Sync(ctx, rev)
	case strings.HasPrefix(key, rolePrefix):
		err = e.roles.Sync(ctx, rev)
	case strings.HasPrefix(key, revokedPrefix):
		err = e.revoked.Sync(ctx, rev)
	}
	return apierror.FromStore(err)
}

// writePasswordFile writes pw to a new file at path readable only by its
// owner, replacing any earlier one.
func writePasswordFile(path, pw string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(pw + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// removePasswordFile deletes the root password file, if any.
func (e *Engine) removePasswordFile() {
	if e.opts.RootPasswordFile == "" {
		return
	}
	if err := os.Remove(e.opts.RootPasswordFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		e.logger.Warn("could not delete the root password file", "file", e.opts.RootPasswordFile, "err", err)
	}
}

// dropStalePasswordFile deletes the root password file when root's
// password is no longer the one it holds: changed through another replica,
// or by reset-root, while this one was down.
func (e *Engine) dropStalePasswordFile(rootHash string) {
	if e.opts.RootPasswordFile == "" {
		return
	}
	b, err := os.ReadFile(e.opts.RootPasswordFile)
	if err != nil {
		return
	}
	if ok, _, _ := e.hasher.Verify(strings.TrimSuffix(string(b), "\n"), rootHash); !ok {
		e.removePasswordFile()
	}
}
