// Package server wires Gatehouse together: it opens the store, loads the
// key ring and the domain packages, and serves the HTTP API until shut
// down. The command and in-process tests and benchmarks start servers
// through it.
package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse/internal/apifabric"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/ccmessaging"
	"github.com/gatehouse/gatehouse/internal/engine"
	"github.com/gatehouse/gatehouse/internal/httpapi"
	"github.com/gatehouse/gatehouse/internal/httpapi/gateway"
	"github.com/gatehouse/gatehouse/internal/httpapi/wire"
	"github.com/gatehouse/gatehouse/internal/keyring"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/bolt"
	"github.com/gatehouse/gatehouse/internal/store/etcd"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Config is everything a server needs; the command fills it from flags,
// environment and the config file.
type Config struct {
	Listen        string
	DataDir       string
	Store         string // "bolt" or "etcd"
	EtcdEndpoints []string
	EtcdPrefix    string // key prefix in etcd ["/gatehouse/"]
	EtcdCACert    string // CA bundle verifying the etcd members (TLS)
	EtcdCert      string // client certificate for etcd (mutual TLS)
	EtcdKey       string // its private key

	RSABits        int
	PrivateKeyFile string
	// KeyRotateEvery, when set, rotates the signing key on that schedule;
	// KeyPrepublish is how long a new key is in the JWKS before it signs
	// (zero: keyring.DefaultPrepublish). See docs/operations.md.
	KeyRotateEvery time.Duration
	KeyPrepublish  time.Duration
	// Issuer, when set, is the iss claim of engine tokens and the issuer
	// of /.well-known/openid-configuration (an https URL).
	Issuer string

	TokenTTL        time.Duration
	TokenLeeway     time.Duration
	LockoutAttempts int
	LockoutWindow   time.Duration
	LockoutBan      time.Duration
	RootPassword    string

	// Version is the version the binary was built as, answered by GET
	// /version.
	Version string

	// Now is the clock of token lifetimes, lockout windows, sessions and
	// rate limits; nil is time.Now. Tests set it to move time without sleeping.
	Now func() time.Time

	Argon2 password.Params

	TrustedProxies []string
	RateLimit      float64
	RateBurst      int
	AuditRetention time.Duration

	TLSCert, TLSKey string

	// AdminListen, when set, is the address of a second, plain-HTTP
	// listener for /metrics, /healthz, /readyz and, with Pprof,
	// /debug/pprof/; /metrics then leaves the public listener. Pprof
	// needs AdminListen.
	AdminListen string
	Pprof       bool
	// TLSClientCA, when set, makes the admin listener serve HTTPS with
	// TLSCert and accept only clients with a certificate this CA bundle
	// verifies (mutual TLS). It needs AdminListen and TLSCert.
	TLSClientCA string

	// CCMessagingTokenTTL is the lifetime of a ccmessaging-token,
	// CCMessagingRenewGrace how long a token superseded by renewal keeps
	// working, CCMessagingSessionMax the maximum lifetime of a session.
	CCMessagingTokenTTL   time.Duration
	CCMessagingRenewGrace time.Duration
	CCMessagingSessionMax time.Duration

	// Routes are the upstreams of gateway mode; UpstreamTimeout is the
	// upstream timeout of routes that set none.
	Routes          []gateway.Route
	UpstreamTimeout time.Duration

	// FeedHeartbeat is how often GET /v4/revocations writes a heartbeat
	// [httpapi.DefaultFeedHeartbeat].
	FeedHeartbeat time.Duration

	Logger *slog.Logger

	// OTLPEndpoint, when set, turns tracing on and sends spans over
	// OTLP/gRPC to it; OTEL_EXPORTER_OTLP_ENDPOINT alone also does
	// (telemetry.NewProvider, docs/operations.md).
	OTLPEndpoint string
	// TracerProvider, when set, takes the spans instead (tests give an
	// in-memory exporter's); OTLPEndpoint is then ignored.
	TracerProvider trace.TracerProvider
}

// DefaultConfig returns the defaults of SPEC §1.
func DefaultConfig() Config {
	return Config{
		Listen: "127.0.0.1:30100", DataDir: "./data", Store: "bolt",
		RSABits: 2048, KeyPrepublish: keyring.DefaultPrepublish, TokenTTL: 12 * time.Hour,
		LockoutAttempts: 3, LockoutWindow: 15 * time.Minute, LockoutBan: 15 * time.Minute,
		Argon2:    password.DefaultParams(),
		RateLimit: 10, RateBurst: 20,
		AuditRetention:      30 * 24 * time.Hour,
		UpstreamTimeout:     gateway.DefaultTimeout,
		CCMessagingTokenTTL: time.Hour, CCMessagingRenewGrace: time.Minute, CCMessagingSessionMax: 24 * time.Hour,
	}
}

// Server is a running Gatehouse.
type Server struct {
	cfg         Config
	logger      *slog.Logger
	st          store.Store
	ring        *keyring.Ring
	audit       *audit.Log
	msg         *ccmessaging.Service
	http        *http.Server
	ln          net.Listener
	admin       *http.Server // nil without AdminListen
	adminLn     net.Listener
	cancel      context.CancelFunc
	tracing     *sdktrace.TracerProvider // the OTLP exporter's, shut down last; nil: none
	served      chan error
	adminServed chan error
}

// Start opens the store, loads every domain package and starts serving.
// It returns once the listener is bound; Addr says where.
func Start(ctx context.Context, cfg Config) (_ *Server, err error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	s := &Server{cfg: cfg, logger: logger, served: make(chan error, 1), adminServed: make(chan error, 1)}
	bg, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	// Everything that can fail on the configuration or the host (argon2
	// parameters, proxies, routes, TLS files, the listener) is checked
	// before the store is opened, and the engine, whose first start
	// creates root, comes after every other part: a start that fails
	// leaves no root behind, nor a generated password nobody saw.
	hasher, err := password.NewHasher(cfg.Argon2)
	if err != nil {
		return nil, err
	}
	proxies, err := wire.ParseProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	if err := gateway.ValidateRoutes(cfg.Routes, true); err != nil {
		return nil, err
	}
	if err := checkIssuer(cfg.Issuer); err != nil {
		return nil, err
	}
	if cfg.Pprof && cfg.AdminListen == "" {
		return nil, errors.New("--pprof needs --admin-listen: profiles are served on the admin listener only")
	}
	if cfg.TLSClientCA != "" && (cfg.AdminListen == "" || cfg.TLSCert == "") {
		return nil, errors.New("--tls-client-ca needs --admin-listen and --tls-cert: it is mutual TLS on the admin listener")
	}
	var certs *certReloader
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		if certs, err = newCertReloader(cfg.TLSCert, cfg.TLSKey, logger); err != nil {
			return nil, err
		}
	}
	var adminTLS *tls.Config
	if cfg.AdminListen != "" {
		if adminTLS, err = adminTLSConfig(cfg, certs); err != nil {
			return nil, err
		}
	}
	if s.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, err
	}
	if cfg.AdminListen != "" {
		if s.adminLn, err = net.Listen("tcp", cfg.AdminListen); err != nil {
			return nil, fmt.Errorf("admin listener: %w", err)
		}
	}
	if cfg.TracerProvider == nil {
		if s.tracing, err = telemetry.NewProvider(ctx, cfg.OTLPEndpoint, cfg.Version); err != nil {
			return nil, err
		}
		if s.tracing != nil {
			cfg.TracerProvider = s.tracing
		}
	}
	if s.st, err = OpenStore(ctx, cfg, logger, bolt.Options{}); err != nil {
		return nil, err
	}
	s.st = metrics.InstrumentStore(s.st)
	if cfg.TracerProvider != nil {
		s.st = telemetry.InstrumentStore(s.st, cmp.Or(cfg.Store, "bolt"))
	}
	var pem []byte
	if cfg.PrivateKeyFile != "" {
		if pem, err = os.ReadFile(cfg.PrivateKeyFile); err != nil {
			return nil, fmt.Errorf("read private key: %w", err)
		}
	}
	if s.ring, err = keyring.Open(bg, s.st, keyring.Options{Bits: cfg.RSABits, PrivateKeyPEM: pem, Logger: logger,
		MaxTokenLifetime: engine.MaxRequestedTTL + cfg.TokenLeeway,
		RotateEvery:      cfg.KeyRotateEvery, Prepublish: cfg.KeyPrepublish, Now: cfg.Now}); err != nil {
		return nil, fmt.Errorf("key ring: %w", err)
	}
	s.audit = audit.New(s.st, logger, cfg.AuditRetention)
	fabric, err := apifabric.New(bg, s.st, s.audit, logger, apifabric.Options{Now: cfg.Now})
	if err != nil {
		return nil, fmt.Errorf("apps: %w", err)
	}
	s.msg, err = ccmessaging.New(bg, s.st, fabric, s.audit, logger, ccmessaging.Options{Now: cfg.Now,
		TokenTTL: cfg.CCMessagingTokenTTL, RenewGrace: cfg.CCMessagingRenewGrace, SessionMax: cfg.CCMessagingSessionMax,
	})
	if err != nil {
		return nil, fmt.Errorf("ccmessaging: %w", err)
	}
	consoleSecret, err := keyring.SharedSecret(ctx, s.st, "console-csrf")
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	eng, err := engine.New(bg, s.st, s.ring, hasher, s.audit, logger, engine.Options{
		TokenTTL: cfg.TokenTTL, Leeway: cfg.TokenLeeway,
		LockoutAttempts: cfg.LockoutAttempts, LockoutWindow: cfg.LockoutWindow, LockoutBan: cfg.LockoutBan,
		RootPassword: cfg.RootPassword, RootPasswordFile: RootPasswordFile(cfg), Now: cfg.Now, Issuer: cfg.Issuer,
		Keys: s.ring,
	})
	if err != nil {
		return nil, err
	}
	gw, err := gateway.New(gateway.Config{Routes: cfg.Routes, Timeout: cfg.UpstreamTimeout,
		Engine: eng, Sessions: s.msg, Proxies: proxies, Logger: logger})
	if err != nil {
		return nil, err
	}
	api := httpapi.New(httpapi.Deps{Store: s.st, Engine: eng, Keys: s.ring, Audit: s.audit, Logger: logger,
		Fabric: fabric, Messaging: s.msg},
		httpapi.Options{Proxies: proxies, RateLimit: cfg.RateLimit, RateBurst: cfg.RateBurst, Now: cfg.Now, Gateway: gw, Version: cfg.Version,
			AdminMetrics: cfg.AdminListen != "", TracerProvider: cfg.TracerProvider, StoreBackend: storeBackend(cfg), Issuer: cfg.Issuer,
			FeedHeartbeat: cfg.FeedHeartbeat, ConsoleSecret: consoleSecret})
	s.http = &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	s.http.RegisterOnShutdown(api.CloseStreams)
	scheme := "http"
	if certs != nil {
		s.http.TLSConfig = &tls.Config{GetCertificate: certs.GetCertificate, MinVersion: tls.VersionTLS12}
		s.ln = tls.NewListener(s.ln, s.http.TLSConfig)
		scheme = "https"
	}
	if s.adminLn != nil {
		if adminTLS != nil {
			s.adminLn = tls.NewListener(s.adminLn, adminTLS)
		}
		s.admin = &http.Server{
			Handler:           api.AdminHandler(cfg.Pprof),
			ReadHeaderTimeout: 5 * time.Second,
			IdleTimeout:       120 * time.Second,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
			TLSConfig:         adminTLS,
		}
	}
	go func() { s.served <- s.http.Serve(s.ln) }()
	logger.Info("listening", "addr", s.Addr(), "scheme", scheme, "store", cfg.Store)
	if s.admin != nil {
		go func() { s.adminServed <- s.admin.Serve(s.adminLn) }()
		logger.Info("admin listening", "addr", s.AdminAddr(), "pprof", cfg.Pprof)
	}
	return s, nil
}

// OpenStore opens the store cfg names (Store, DataDir, Etcd*), as Start
// does, a bolt store with boltOpts; the caller closes it. Offline tools
// such as the importer and reset-root use it to reach the same store a
// server with the same settings would.
func OpenStore(ctx context.Context, cfg Config, logger *slog.Logger, boltOpts bolt.Options) (store.Store, error) {
	switch cfg.Store {
	case "", "bolt":
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, err
		}
		return opened(bolt.Open(boltFile(cfg), boltOpts))
	case "etcd":
		tlsCfg, err := EtcdTLS(cfg.EtcdCACert, cfg.EtcdCert, cfg.EtcdKey)
		if err != nil {
			return nil, err
		}
		return opened(etcd.Open(ctx, etcd.Config{Endpoints: cfg.EtcdEndpoints, Prefix: cfg.EtcdPrefix, TLS: tlsCfg, Logger: logger,
			DialOptions: telemetry.GRPCDialOptions(cfg.TracerProvider)}))
	default:
		return nil, fmt.Errorf("unknown store %q (want bolt or etcd)", cfg.Store)
	}
}

// storeBackend names the backend cfg selects: "bolt" or "etcd".
func storeBackend(cfg Config) string {
	if cfg.Store == "" {
		return "bolt"
	}
	return cfg.Store
}

// RootPasswordFile is where the first start keeps a generated root
// password, in the data directory, until root changes it.
func RootPasswordFile(cfg Config) string { return filepath.Join(cfg.DataDir, "root-password") }

// boltFile is the path of the embedded store's file.
func boltFile(cfg Config) string { return filepath.Join(cfg.DataDir, "gatehouse.db") }

// opened returns the result of a backend's Open as a store.Store: nil,
// not an interface holding a nil pointer, when the open failed, so that
// nothing is closed after a failed start.
func opened[S store.Store](st S, err error) (store.Store, error) {
	if err != nil {
		return nil, err
	}
	return st, nil
}

// EtcdTLS builds the TLS configuration of an etcd client from a CA
// bundle file and a client certificate and key file, or nil when all are
// empty.
func EtcdTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" && certFile == "" && keyFile == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("etcd CA: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd CA %s: no certificate found", caFile)
		}
	}
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("etcd client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// adminTLSConfig is the TLS configuration of the admin listener: nil
// (plain HTTP) without TLSClientCA, else mutual TLS with the public
// listener's certificate.
func adminTLSConfig(cfg Config, certs *certReloader) (*tls.Config, error) {
	if cfg.TLSClientCA == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(cfg.TLSClientCA)
	if err != nil {
		return nil, fmt.Errorf("TLS client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("TLS client CA %s: no certificate found", cfg.TLSClientCA)
	}
	return &tls.Config{GetCertificate: certs.GetCertificate, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// AdminAddr is the address of the admin listener; "" without one.
func (s *Server) AdminAddr() string {
	if s.adminLn == nil {
		return ""
	}
	return s.adminLn.Addr().String()
}

// Shutdown stops accepting requests, drains in-flight ones (until ctx
// ends), flushes pending audit records and closes the store.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if serr := <-s.served; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if s.admin != nil {
		if aerr := s.admin.Shutdown(ctx); aerr != nil && err == nil {
			err = aerr
		}
		if serr := <-s.adminServed; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
	}
	s.close()
	return err
}

// close releases everything Start opened, in reverse order.
func (s *Server) close() {
	if s.ln != nil && s.http == nil {
		s.ln.Close() // bound, never served
	}
	if s.adminLn != nil && s.admin == nil {
		s.adminLn.Close()
	}
	if s.msg != nil {
		s.msg.Close()
	}
	if s.audit != nil {
		s.audit.Close()
	}
	s.cancel()
	if s.ring != nil {
		s.ring.Close()
	}
	if s.st != nil {
		if err := s.st.Close(); err != nil {
			s.logger.Warn("closing the store", "err", err)
		}
	}
	if s.tracing != nil {
		// Export the spans still buffered, but do not hold a stop for an
		// unreachable collector.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.tracing.Shutdown(ctx); err != nil {
			s.logger.Warn("flushing traces", "err", err)
		}
	}
}

// checkIssuer accepts an empty issuer or an absolute http(s) URL without
// query, fragment or trailing slash, as OpenID discovery requires.
func checkIssuer(iss string) error {
	if iss == "" {
		return nil
	}
	u, err := url.Parse(iss)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" ||
		u.User != nil || strings.HasSuffix(iss, "/") {
		return fmt.Errorf("--issuer %q: want an http(s) URL without query, fragment or trailing slash", iss)
	}
	return nil
}
