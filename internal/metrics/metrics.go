// Package metrics holds Gatehouse's Prometheus metrics. Every Gatehouse
// server in a process shares these collectors; they are registered on
// Registry, which GET /metrics serves.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Registry holds every Gatehouse collector plus the Go and process ones.
var Registry = prometheus.NewRegistry()

// Token kinds used as the "kind" label.
const (
	KindEngine      = "engine"
	KindAccess      = "access"
	KindCCMessaging = "ccmessaging"
)

// Results of an engine login, the "result" label of Logins. A login over
// the rate limit is refused before the engine sees it and is none of
// these (gatehouse_http_requests_total counts it as a 429).
const (
	LoginOK               = "ok"                // a token was issued
	LoginWrongCredentials = "wrong_credentials" // unknown name or wrong password
	LoginLocked           = "locked"            // the name::client key is banned
	LoginInactive         = "inactive"          // right password, inactive account
	LoginInvalid          = "invalid"           // a malformed request (tokenExpirationTime)
	LoginError            = "error"             // the store or the signer failed
)

// LoginResults are every value of Logins' "result" label.
var LoginResults = []string{LoginOK, LoginWrongCredentials, LoginLocked, LoginInactive, LoginInvalid, LoginError}

var (
	// Requests counts HTTP requests by route pattern, method and status.
	Requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_http_requests_total", Help: "HTTP requests by route, method and status.",
	}, []string{"route", "method", "status"})
	// Latency observes HTTP request duration by route pattern.
	Latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "gatehouse_http_request_duration_seconds", Help: "HTTP request latency by route.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route"})
	// TokensIssued counts issued tokens by kind.
	TokensIssued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_tokens_issued_total", Help: "Tokens issued by kind.",
	}, []string{"kind"})
	// TokensVerified counts verifications by kind and result (ok or the error code).
	TokensVerified = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_tokens_verified_total", Help: "Token verifications by kind and result.",
	}, []string{"kind", "result"})
	// TokensRenewed counts in-band renewals by kind.
	TokensRenewed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_tokens_renewed_total", Help: "Tokens renewed in-band by kind.",
	}, []string{"kind"})
	// TokensRevoked counts revocations by kind and reason.
	TokensRevoked = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_tokens_revoked_total", Help: "Token revocations by kind and reason.",
	}, []string{"kind", "reason"})
	// Logins counts engine logins (POST /v4/token and the console's
	// sign-in) by result, one of LoginResults; never by account.
	Logins = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_logins_total", Help: "Engine logins by result.",
	}, []string{"result"})
	// Lockouts counts bans imposed by the lockout policy.
	Lockouts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gatehouse_lockouts_total", Help: "Bans imposed after repeated login failures.",
	})
	// CacheLookups counts verified-token cache lookups by kind and result (hit or miss).
	CacheLookups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_token_cache_lookups_total", Help: "Verified-token cache lookups by result; hit ratio = hit / (hit + miss).",
	}, []string{"kind", "result"})
	// StoreLatency observes store operation latency by operation.
	StoreLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "gatehouse_store_operation_duration_seconds", Help: "Store operation latency by operation.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
	}, []string{"op"})
	// AuditUnstored counts audit records kept in the log only, by reason:
	// store_error (the store write failed) or queue_full (a record not
	// waited for found too many records waiting).
	AuditUnstored = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_audit_records_unstored_total", Help: "Audit records written to the log but not to the store, by reason.",
	}, []string{"reason"})
)

func init() {
	Registry.MustRegister(Requests, Latency, TokensIssued, TokensVerified, TokensRenewed, TokensRevoked,
		Logins, Lockouts, CacheLookups, StoreLatency, AuditUnstored,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Every result is exported from the start, at 0, so that a rate over
	// the first failure is not lost.
	for _, r := range LoginResults {
		Logins.WithLabelValues(r)
	}
}
