// Package etcd is Gatehouse's distributed store backend on an etcd v3
// cluster. It owns the layout of items under a key prefix, the value
// envelope carrying each item's expiry, the leases that make etcd delete
// expired items, the mapping of etcd watches to the store's change feed and
// the mapping of etcd and gRPC failures to the store's errors. Revisions
// are etcd's own: an item's revision is its ModRevision.
package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Defaults applied by Open to zero Config fields.
const (
	DefaultPrefix         = "/gatehouse/"
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = 5 * time.Second
)

// PrefixOrDefault returns the key prefix Open uses for Config.Prefix
// prefix: prefix itself, or DefaultPrefix when it is empty.
func PrefixOrDefault(prefix string) string {
	if prefix == "" {
		return DefaultPrefix
	}
	return prefix
}

// keepAliveTime is how often an idle connection to a member is probed, so
// that a dead member is noticed and its requests go to the others.
const keepAliveTime = 10 * time.Second

// reconnectBackoff paces reconnection to a member that went away. It is
// capped at a few seconds (gRPC's default cap is two minutes) so that a
// cluster back from an outage is used again promptly.
var reconnectBackoff = backoff.Config{
	BaseDelay:  100 * time.Millisecond,
	Multiplier: 1.6,
	Jitter:     0.2,
	MaxDelay:   3 * time.Second,
}

// Config says how to reach the cluster and where Gatehouse's keys live.
type Config struct {
	// Endpoints are the client URLs of the members, e.g.
	// "https://10.0.0.1:2379". Requests are balanced over the reachable ones.
	Endpoints []string
	// Prefix is prepended to every key so that several installations can
	// share a cluster (default "/gatehouse/"). It must end with "/", and
	// the prefixes of installations sharing a cluster must not nest.
	Prefix string
	// TLS, when set, is used for every connection (client certificates go
	// in its Certificates).
	TLS *tls.Config
	// DialTimeout bounds Open's first contact with the cluster (default 5s).
	DialTimeout time.Duration
	// RequestTimeout bounds every request; a request that does not complete
	// in time fails with store.ErrUnavailable (default 5s).
	RequestTimeout time.Duration
	// Logger receives the backend's own log lines and the etcd client's
	// (default slog.Default()).
	Logger *slog.Logger
	// DialOptions are added to the client's gRPC dial options (tracing of
	// the round trips).
	DialOptions []grpc.DialOption
}

func (c Config) withDefaults() (Config, error) {
	if len(c.Endpoints) == 0 {
		return c, errors.New("etcd: no endpoints")
	}
	c.Prefix = PrefixOrDefault(c.Prefix)
	if !strings.HasSuffix(c.Prefix, "/") {
		return c, fmt.Errorf("etcd: prefix %q does not end with /", c.Prefix)
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// Store is a store.Store kept in an etcd cluster under a key prefix.
type Store struct {
	client  *clientv3.Client
	prefix  string
	timeout time.Duration
	log     *slog.Logger
	leases  *leases
	watches *watches

	closed    atomic.Bool
	life      context.Context // cancelled by Close
	stop      context.CancelFunc
	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// Open connects to the cluster and checks that it answers within
// cfg.DialTimeout; an unreachable cluster gives an error wrapping
// store.ErrUnavailable.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:            cfg.Endpoints,
		TLS:                  cfg.TLS,
		DialTimeout:          cfg.DialTimeout,
		DialKeepAliveTime:    keepAliveTime,
		DialKeepAliveTimeout: cfg.RequestTimeout,
		Logger:               zapLogger(cfg.Logger.Handler().WithAttrs([]slog.Attr{slog.String("component", "etcd-client")})),
		DialOptions: append([]grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           reconnectBackoff,
			MinConnectTimeout: cfg.DialTimeout,
		})}, cfg.DialOptions...),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd: connect to %v: %w", cfg.Endpoints, err)
	}
	s := &Store{
		client:  client,
		prefix:  cfg.Prefix,
		timeout: cfg.RequestTimeout,
		log:     cfg.Logger,
	}
	s.life, s.stop = context.WithCancel(context.Background())
	s.leases = newLeases(client)
	s.watches = newWatches(s)
	if err := s.ping(ctx, cfg.DialTimeout); err != nil {
		return nil, errors.Join(fmt.Errorf("etcd: connect to %v: %w", cfg.Endpoints, err), s.Close())
	}
	return s, nil
}

// key is the etcd key of a store key.
func (s *Store) key(key string) string { return s.prefix + key }

// call runs one request with the request timeout and maps its error.
func (s *Store) call(ctx context.Context, req func(ctx context.Context) error) error {
	return s.callWithin(ctx, s.timeout, req)
}

// callWithin runs one request with timeout and maps its error.
func (s *Store) callWithin(ctx context.Context, timeout time.Duration, req func(ctx context.Context) error) error {
	return s.mapError(ctx, s.request(ctx, timeout, req))
}

// request runs one request with timeout and returns its error as etcd
// gave it, for a caller that looks at it before mapping it.
func (s *Store) request(ctx context.Context, timeout time.Duration, req func(ctx context.Context) error) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return req(rctx)
}

// get returns the stored item under key, expired or not, or nil.
func (s *Store) get(ctx context.Context, key string) (*store.Item, error) {
	var resp *clientv3.GetResponse
	err := s.call(ctx, func(ctx context.Context) error {
		var err error
		resp, err = s.client.Get(ctx, s.key(key))
		return err
	})
	if err != nil || len(resp.Kvs) == 0 {
		return nil, err
	}
	return s.decode(resp.Kvs[0])
}

// Get returns the live item under key, or store.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) (store.Item, error) {
	it, err := s.get(ctx, key)
	if err != nil {
		return store.Item{}, err
	}
	if it = live(it, time.Now()); it == nil {
		return store.Item{}, store.ErrNotFound
	}
	return *it, nil
}

// listPage is how many keys Scan (and so List) reads per request. A
// listing of a million sessions in one response takes longer than the
// request timeout; in pages each request stays short.
var listPage int64 = 10000

// List returns the live items under prefix, sorted by key, and the
// cluster revision the listing was read at: the pages of a Scan. If that
// revision is compacted away between pages, the listing starts again.
func (s *Store) List(ctx context.Context, prefix string) ([]store.Item, int64, error) {
	const attempts = 3
	for i := 1; ; i++ {
		var (
			items []store.Item
			rev   int64
		)
		err := s.Scan(ctx, prefix, func(r int64, page []store.Item) error {
			rev, items = r, append(items, page...)
			return nil
		})
		if err == nil {
			return items, rev, nil
		}
		if !errors.Is(err, rpctypes.ErrCompacted) || i == attempts {
			return nil, 0, err
		}
	}
}

// Scan hands the live items under prefix to fn in pages of listPage keys
// read at one revision: the first page with a linearizable read, the
// others at that page's revision, so the pages are one consistent
// snapshot however long fn takes, unless that revision is compacted away
// meanwhile (an error wrapping rpctypes.ErrCompacted).
func (s *Store) Scan(ctx context.Context, prefix string, fn store.ScanFunc) error {
	from, end := s.key(prefix), clientv3.GetPrefixRangeEnd(s.key(prefix))
	now := time.Now()
	var rev int64
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(listPage)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		var resp *clientv3.GetResponse
		err := s.call(ctx, func(ctx context.Context) error {
			var err error
			resp, err = s.client.Get(ctx, from, opts...)
			return err
		})
		if err != nil {
			return err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		page := make([]store.Item, 0, len(resp.Kvs))
		for _, kv := range resp.Kvs {
			it, err := s.decode(kv)
			if err != nil {
				return err
			}
			if !it.Expired(now) {
				page = append(page, *it)
			}
		}
		if err := fn(rev, page); err != nil {
			return err
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// Ping reads one key with a linearizable read, which needs a leader and a
// quorum; it fails with store.ErrUnavailable if that does not complete
// within the request timeout.
func (s *Store) Ping(ctx context.Context) error {
	return s.ping(ctx, s.timeout)
}

func (s *Store) ping(ctx context.Context, timeout time.Duration) error {
	return s.callWithin(ctx, timeout, func(ctx context.Context) error {
		_, err := s.client.Get(ctx, s.prefix, clientv3.WithCountOnly())
		return err
	})
}

// Close ends every watcher with store.ErrClosed and closes the client.
// Items and their leases stay in the cluster. Later calls return the
// result of the first.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.stop()
		s.watches.close()
		if err := s.client.Close(); err != nil && !errors.Is(err, context.Canceled) {
			s.closeErr = fmt.Errorf("etcd: close: %w", err)
		}
	})
	return s.closeErr
}
