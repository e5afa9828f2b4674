// Package apifabric owns API Fabric apps — their app keys, the keyed hashes
// of their secrets, secret rotation — and the tokenByAkSk exchange: the
// issue and verification of the self-contained AccessTokens an app obtains
// with its key and secret. It knows nothing of HTTP; errors are apierror
// values.
package apifabric

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"log/slog"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/keyring"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/tokencache"
)

// Names of the shared server secrets this package uses.
const (
	hashSecretName    = "apifabric-app-secret-hash"
	signingSecretName = "apifabric-access-token"
)

// Options configure a Service. Zero values take the defaults.
type Options struct {
	CacheSize int // verified-token cache entries [65536]
	Now       func() time.Time
}

func (o *Options) defaults() {
	if o.CacheSize <= 0 {
		o.CacheSize = 1 << 16
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Service manages apps and their AccessTokens. It is safe for concurrent use.
type Service struct {
	opts    Options
	st      store.Store
	audit   *audit.Log
	logger  *slog.Logger
	hashers *sync.Pool // of hashes of app secrets, see newHashers
	signKey []byte     // HS256 key of AccessTokens
	apps    *store.Table[appRecord]
	cache   *tokencache.Cache[*accessClaims]
}

// New loads the apps from st and follows their changes until ctx ends.
func New(ctx context.Context, st store.Store, log *audit.Log, logger *slog.Logger, opts Options) (*Service, error) {
	opts.defaults()
	hashKey, err := keyring.SharedSecret(ctx, st, hashSecretName)
	if err != nil {
		return nil, err
	}
	signKey, err := keyring.SharedSecret(ctx, st, signingSecretName)
	if err != nil {
		return nil, err
	}
	s := &Service{
		opts: opts, st: st, audit: log, logger: logger,
		hashers: newHashers(hashKey),
		signKey: signKey,
		apps:    store.NewTable(appPrefix, store.DecodeJSON[appRecord]),
		cache:   tokencache.New(opts.CacheSize, func(c *accessClaims) time.Time { return c.ExpiresAt.Time }),
	}
	if err := s.apps.Follow(ctx, st); err != nil {
		return nil, err
	}
	return s, nil
}

// newHashers returns a pool of HMAC-SHA-256 hashes under key. A hash that
// was reset restarts from its keyed state instead of hashing the key
// again, which keeps hashing a secret cheap.
func newHashers(key []byte) *sync.Pool {
	return &sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}
}

// Healthy reports whether the in-memory app table is connected to the store.
func (s *Service) Healthy() bool { return s.apps.Healthy() }

// sync waits until the app table applied revision rev of a write under
// appPrefix, so the write is visible to the next request on this replica.
func (s *Service) sync(ctx context.Context, rev int64) error {
	return apierror.FromStore(s.apps.Sync(ctx, rev))
}
