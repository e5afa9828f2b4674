package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/gcpolicy"
	"github.com/gatehouse/gatehouse/internal/httpapi"
	"github.com/gatehouse/gatehouse/internal/httpapi/gateway"
	"github.com/gatehouse/gatehouse/internal/server"
)

func newServeCmd() *cobra.Command {
	cfg := server.DefaultConfig()
	var configFile string
	var upstreams []string
	var gcHeadroomMiB uint64
	var logLevel, logFormat string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Gatehouse server",
		Long: "Run the Gatehouse server. Every flag can also be given as GATEHOUSE_<FLAG> in the\n" +
			"environment or as a key of the YAML file named by --config; flags win over the\n" +
			"environment, the environment over the file.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnvAndFile(cmd.Flags(), configFile); err != nil {
				return err
			}
			if err := checkFeedHeartbeat(cfg.FeedHeartbeat); err != nil {
				return err
			}
			logger, err := newLogger(os.Stderr, logLevel, logFormat)
			if err != nil {
				return err
			}
			cfg.Logger = logger
			cfg.RootPassword = server.RootPasswordFromEnv()
			cfg.Version = version
			routes, err := gatewayRoutes(configFile, upstreams)
			if err != nil {
				return err
			}
			cfg.Routes = routes
			defer gcpolicy.Start(min(gcHeadroomMiB, math.MaxUint64>>20) << 20)()
			return serve(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "YAML file of settings (keys are flag names)")
	f.StringVar(&cfg.Listen, "listen", cfg.Listen, "address to listen on (port 0 picks a free port)")
	f.StringVar(&cfg.DataDir, "data", cfg.DataDir, "directory of the embedded store")
	f.StringVar(&cfg.Store, "store", cfg.Store, "store backend: bolt or etcd")
	f.StringSliceVar(&cfg.EtcdEndpoints, "etcd-endpoints", nil, "etcd endpoints (host:port, comma separated)")
	f.StringVar(&cfg.EtcdPrefix, "etcd-prefix", "", "key prefix in etcd, so installations can share a cluster (default /gatehouse/)")
	f.StringVar(&cfg.EtcdCACert, "etcd-cacert", "", "CA bundle verifying the etcd members")
	f.StringVar(&cfg.EtcdCert, "etcd-cert", "", "client certificate for etcd")
	f.StringVar(&cfg.EtcdKey, "etcd-key", "", "private key of --etcd-cert")
	f.IntVar(&cfg.RSABits, "rsa-bits", cfg.RSABits, "size of generated RSA signing keys: 2048, 3072 or 4096")
	f.StringVar(&cfg.PrivateKeyFile, "private-key", "", "PEM file (PKCS#1 or PKCS#8) of an RSA key to import as the signing key")
	f.DurationVar(&cfg.KeyRotateEvery, "key-rotate-every", 0, "rotate the signing key on this schedule (at least 1h; 0: only on request)")
	f.DurationVar(&cfg.KeyPrepublish, "key-prepublish", cfg.KeyPrepublish, "how long a new signing key is published in the JWKS before it signs (at least 1s)")
	f.StringVar(&cfg.Issuer, "issuer", "", "URL Gatehouse is reached at by verifiers: the iss claim of engine tokens and the issuer of /.well-known/openid-configuration (default: no iss claim; the issuer is the request's origin)")
	f.DurationVar(&cfg.TokenTTL, "token-ttl", cfg.TokenTTL, "default lifetime of engine tokens")
	f.DurationVar(&cfg.TokenLeeway, "token-leeway", 0, "clock skew tolerated on token expiry (at most 60s)")
	f.IntVar(&cfg.LockoutAttempts, "lockout-attempts", cfg.LockoutAttempts, "failed logins that ban a name::ip key")
	f.DurationVar(&cfg.LockoutWindow, "lockout-window", cfg.LockoutWindow, "window in which failed logins count")
	f.DurationVar(&cfg.LockoutBan, "lockout-ban", cfg.LockoutBan, "how long a ban lasts")
	f.StringSliceVar(&cfg.TrustedProxies, "trusted-proxies", nil, "addresses or CIDRs whose X-Forwarded-For, X-Real-IP and X-Forwarded-Proto are believed")
	f.Float64Var(&cfg.RateLimit, "rate-limit", cfg.RateLimit, "per-client-IP requests per second on token-issuing endpoints (0 disables)")
	f.IntVar(&cfg.RateBurst, "rate-burst", cfg.RateBurst, "burst of the per-client-IP rate limit")
	f.DurationVar(&cfg.AuditRetention, "audit-retention", cfg.AuditRetention, "how long audit records are kept in the store")
	f.Uint32Var(&cfg.Argon2.Memory, "argon2-memory", cfg.Argon2.Memory, "argon2id memory in KiB (OWASP minimums enforced)")
	f.Uint32Var(&cfg.Argon2.Time, "argon2-time", cfg.Argon2.Time, "argon2id passes")
	f.Uint8Var(&cfg.Argon2.Threads, "argon2-threads", cfg.Argon2.Threads, "argon2id parallelism")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "certificate file; with --tls-key serves HTTPS")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "private key file of --tls-cert")
	f.DurationVar(&cfg.CCMessagingTokenTTL, "ccmessaging-token-ttl", cfg.CCMessagingTokenTTL, "lifetime of a ccmessaging-token (at least 1s)")
	f.DurationVar(&cfg.CCMessagingRenewGrace, "ccmessaging-renew-grace", cfg.CCMessagingRenewGrace, "how long a ccmessaging-token superseded by renewal keeps working (at least 1s)")
	f.DurationVar(&cfg.CCMessagingSessionMax, "ccmessaging-session-max", cfg.CCMessagingSessionMax, "maximum lifetime of a ccmessaging session (at least 1s)")
	f.StringArrayVar(&upstreams, "upstream", nil, "gateway route PREFIX=URL: check requests under PREFIX, then forward them to URL (repeatable)")
	f.DurationVar(&cfg.UpstreamTimeout, "upstream-timeout", cfg.UpstreamTimeout, "how long an upstream may take to send its response headers")
	f.DurationVar(&cfg.FeedHeartbeat, "feed-heartbeat", httpapi.DefaultFeedHeartbeat, "how often GET /v4/revocations sends a heartbeat while the replica follows its store (1s to 15s)")
	f.Uint64Var(&gcHeadroomMiB, "gc-headroom", gcpolicy.DefaultHeadroom>>20, "room in MiB the garbage collector leaves at least above the live heap, where Go's default goal leaves less (0: Go's default; ignored when GOGC is set)")
	f.StringVar(&cfg.AdminListen, "admin-listen", "", "address of a plain-HTTP admin listener for /metrics, /healthz, /readyz (and /debug/pprof with --pprof); /metrics then leaves --listen")
	f.StringVar(&cfg.TLSClientCA, "tls-client-ca", "", "CA bundle for mutual TLS on the admin listener: it then serves HTTPS with --tls-cert to clients with a certificate from this CA")
	f.BoolVar(&cfg.Pprof, "pprof", false, "serve /debug/pprof on the admin listener (needs --admin-listen)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "json", "log format: json or text")
	f.StringVar(&cfg.OTLPEndpoint, "otlp-endpoint", "", "OTLP/gRPC collector for traces (http://host:4317 plain, https:// or host:port TLS); tracing is off unless this or OTEL_EXPORTER_OTLP_ENDPOINT is set")
	return cmd
}

// The bounds of --feed-heartbeat. Each write to a revocation stream must
// finish within two heartbeats, so a shorter one would cut subscribers on
// slow links; pkg/verifier reconnects a stream silent for its IdleTimeout
// (30 s by default), so a longer one would keep such verifiers
// reconnecting. At most 15 s, one heartbeat may be lost.
const (
	minFeedHeartbeat = time.Second
	maxFeedHeartbeat = 15 * time.Second
)

// checkFeedHeartbeat refuses a --feed-heartbeat out of its bounds.
func checkFeedHeartbeat(d time.Duration) error {
	if d < minFeedHeartbeat || d > maxFeedHeartbeat {
		return fmt.Errorf("--feed-heartbeat %v: want %v to %v", d, minFeedHeartbeat, maxFeedHeartbeat)
	}
	return nil
}

// gatewayRoutes returns the routes of the config file's `routes:` list,
// with those of --upstream (flag or environment) replacing routes of the
// same prefix.
func gatewayRoutes(configFile string, upstreams []string) ([]gateway.Route, error) {
	var file []gateway.Route
	if err := readSection(configFile, "routes", &file); err != nil {
		return nil, err
	}
	var flags []gateway.Route
	for _, u := range upstreams {
		r, err := gateway.ParseUpstream(u)
		if err != nil {
			return nil, err
		}
		flags = append(flags, r)
	}
	return gateway.MergeRoutes(file, flags), nil
}

func serve(ctx context.Context, cfg server.Config) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	srv, err := server.Start(ctx, cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	cfg.Logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	cfg.Logger.Info("stopped")
	return nil
}
