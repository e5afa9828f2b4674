// Package ccmessaging owns third-party channel sessions: channels (which
// apps may open sessions on them, how long a session may idle), applyToken,
// the sessions it opens, and the verification and in-band renewal of
// ccmessaging-tokens. Verification reads memory only: the session table,
// kept current from the store's change feed, knows every live token, and
// last-activity times are coalesced in memory and written in the
// background. It knows nothing of HTTP; errors are apierror values.
package ccmessaging

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/keyring"
	"github.com/gatehouse/gatehouse/internal/store"
)

// signingSecretName names the shared server secret of ccmessaging-tokens.
const signingSecretName = "ccmessaging-token"

// Options configure a Service. Zero values take the defaults.
type Options struct {
	TokenTTL   time.Duration // lifetime of a ccmessaging-token [1h]
	RenewGrace time.Duration // how long a token superseded by renewal keeps working [60s]
	SessionMax time.Duration // maximum lifetime of a session [24h]
	// FlushInterval is how often last-activity times are written to the
	// store [5s].
	FlushInterval time.Duration
	Now           func() time.Time
}

func (o *Options) defaults() error {
	if o.TokenTTL == 0 {
		o.TokenTTL = time.Hour
	}
	if o.RenewGrace == 0 {
		o.RenewGrace = time.Minute
	}
	if o.SessionMax == 0 {
		o.SessionMax = 24 * time.Hour
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	switch {
	case o.TokenTTL < time.Second:
		return fmt.Errorf("ccmessaging token TTL %s is under 1s", o.TokenTTL)
	case o.RenewGrace < time.Second:
		return fmt.Errorf("ccmessaging renew grace %s is under 1s", o.RenewGrace)
	case o.SessionMax < time.Second:
		return fmt.Errorf("ccmessaging session maximum %s is under 1s", o.SessionMax)
	case o.FlushInterval < 10*time.Millisecond:
		return fmt.Errorf("ccmessaging flush interval %s is under 10ms", o.FlushInterval)
	}
	return nil
}

// App is an app whose AccessToken was verified: its key, and the epoch
// its sessions belong to (an app's epoch moves when it is deactivated,
// which ends every session opened before).
type App struct {
	Key   string
	Epoch int64
}

// Apps is what ccmessaging needs of the API Fabric; internal/server plugs
// in apifabric's service. Every method touches memory only.
type Apps interface {
	// AccessEpoch checks the AccessToken in authorization for appKey and
	// returns the app's current epoch, or the API Fabric's error.
	AccessEpoch(appKey, authorization string) (int64, error)
	// AppExists reports whether an app with key exists, active or not.
	AppExists(key string) bool
	// SessionEpoch returns the epoch of an active app; false for an
	// inactive or deleted app, whose sessions have all ended.
	SessionEpoch(key string) (int64, bool)
}

// Service manages channels and sessions. It is safe for concurrent use.
type Service struct {
	opts     Options
	st       store.Store
	apps     Apps
	audit    *audit.Log
	logger   *slog.Logger
	minter   minter
	channels *store.Table[channel]
	sessions *sessionTable
	sessFeed *store.Follower

	// locks serialize renewals of one session on this replica, so
	// concurrent requests with the same expired token make one store write.
	locks [lockStripes]sync.Mutex

	stopFlush context.CancelFunc
	flushed   chan struct{}
	closeOnce sync.Once
}

// lockStripes is the number of renewal locks. A renewal holds its lock
// for a store write; with 256 stripes, 64 concurrent renewals of
// different sessions waited 0.6 ms each on average for a stripe shared
// with another session.
const lockStripes = 4096

// New loads channels and sessions from st, follows their changes until
// ctx ends, and starts writing last-activity times in the background.
// Close stops the writer after a final flush.
func New(ctx context.Context, st store.Store, apps Apps, log *audit.Log, logger *slog.Logger, opts Options) (*Service, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	key, err := keyring.SharedSecret(ctx, st, signingSecretName)
	if err != nil {
		return nil, err
	}
	s := &Service{opts: opts, st: st, apps: apps, audit: log, logger: logger, minter: minter{key: key}}
	s.channels = store.NewTable(channelPrefix, decodeChannel)
	s.sessions = newSessionTable(s.minter)
	if err := s.channels.Follow(ctx, st); err != nil {
		return nil, err
	}
	if s.sessFeed, err = store.Follow(ctx, st, sessionPrefix, s.sessions); err != nil {
		return nil, fmt.Errorf("load %s: %w", sessionPrefix, err)
	}
	fctx, cancel := context.WithCancel(ctx)
	s.stopFlush, s.flushed = cancel, make(chan struct{})
	go s.flushLoop(fctx)
	return s, nil
}

// Healthy reports whether the channel and session tables are connected to
// the store.
func (s *Service) Healthy() bool { return s.channels.Healthy() && s.sessFeed.Healthy() }

// Close stops the background writer after writing the pending
// last-activity times. Call it before closing the store.
func (s *Service) Close() {
	s.closeOnce.Do(func() {
		s.stopFlush()
		<-s.flushed
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.flush(ctx)
	})
}

// lock returns the mutex serializing renewals of the session under key.
func (s *Service) lock(key string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(key))
	return &s.locks[h.Sum32()%lockStripes]
}

// waitFor waits until f applied revision rev, so a write is visible to the
// next request on this replica.
func waitFor(ctx context.Context, f *store.Follower, rev int64) error {
	if f.Revision() >= rev {
		return nil // already applied: no timer to set
	}
	ctx, cancel := context.WithTimeout(ctx, store.SyncTimeout)
	defer cancel()
	return apierror.FromStore(f.WaitFor(ctx, rev))
}
