package apifabric

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/tokencache"
	"github.com/gatehouse/gatehouse/pkg/jwtform"
)

// AccessToken lifetimes a client may ask for with X-Token-Expire, in seconds.
const (
	DefaultTokenSeconds = 600
	MaxTokenSeconds     = 3600
)

// TokenRequest is the body of POST /apigovernance/api/oauth/tokenByAkSk
// plus its X-Token-Expire header.
type TokenRequest struct {
	AppKey    string `json:"app_key"`
	AppSecret string `json:"app_secret"`
	// Expire is the X-Token-Expire header; nil when the request has none.
	Expire *string `json:"-"`
}

// TokenResponse is the answer of tokenByAkSk; every value is a string.
type TokenResponse struct {
	AccessToken string `json:"AccessToken"`
	ApplyType   string `json:"ApplyType"`
	CreateTime  string `json:"CreateTime"`
	Expires     string `json:"Expires"`
	Scope       string `json:"Scope"`
	AppKey      string `json:"AppKey"`
	UserID      string `json:"UserID"`
}

// accessClaims are the claims of an AccessToken: the app key as sub, the
// app's token generation, iat, exp and a unique jti.
type accessClaims struct {
	Generation int64 `json:"gen"`
	jwt.RegisteredClaims
}

// issuedClaims are accessClaims as issue encodes them: the same JSON,
// with exp and iat as plain integers (jwt.NumericDate encodes whole
// seconds the same way), so that encoding them takes no dates to allocate
// nor marshalers to call. The embedded RegisteredClaims, empty and not
// encoded, make it a jwt.Claims.
type issuedClaims struct {
	Generation           int64  `json:"gen"`
	Subject              string `json:"sub,omitempty"`
	Exp                  int64  `json:"exp"`
	Iat                  int64  `json:"iat"`
	ID                   string `json:"jti,omitempty"`
	jwt.RegisteredClaims `json:"-"`
}

// Access is a verified AccessToken.
type Access struct {
	AppKey  string
	JTI     string
	Expires time.Time
	// Epoch is the app's epoch at verification (see SessionEpoch).
	Epoch int64
}

var (
	accessCacheHit  = metrics.CacheLookups.WithLabelValues(metrics.KindAccess, "hit")
	accessCacheMiss = metrics.CacheLookups.WithLabelValues(metrics.KindAccess, "miss")
	accessIssued    = metrics.TokensIssued.WithLabelValues(metrics.KindAccess)
	accessVerified  = metrics.TokensVerified.WithLabelValues(metrics.KindAccess, "ok")
)

// errBadCredentials is the one answer to an unknown key, a wrong secret
// and an inactive app.
var errBadCredentials = apierror.InvalidAppCredentials

// parseExpire validates X-Token-Expire: absent means the default, else
// digits only, 1..3600.
func parseExpire(h *string) (int, error) {
	if h == nil {
		return DefaultTokenSeconds, nil
	}
	n, err := strconv.Atoi(*h)
	if err != nil || n < 1 || n > MaxTokenSeconds || strings.TrimLeft(*h, "0123456789") != "" {
		return 0, apierror.InvalidParams.Detailf("X-Token-Expire must be a number of seconds between 1 and %d", MaxTokenSeconds)
	}
	return n, nil
}

// TokenByAkSk exchanges an app key and secret for an AccessToken. An
// unknown key, a wrong secret and an inactive app get the same error after
// the same work (one HMAC and two constant-time comparisons).
func (s *Service) TokenByAkSk(ctx context.Context, req TokenRequest, ip string) (*TokenResponse, error) {
	if req.AppKey == "" || req.AppSecret == "" {
		return nil, apierror.InvalidParams.WithDetail("app_key and app_secret are required")
	}
	seconds, err := parseExpire(req.Expire)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now()
	rec, known := s.apps.Get(req.AppKey)
	if !known {
		rec = &appRecord{} // compare against empty hashes: same work, no match
	}
	gen, ok := rec.matchSecret(s.hashSecret(req.AppSecret), now)
	reason := ""
	switch {
	case !known:
		reason = "unknown app key"
	case !ok:
		reason = "wrong secret"
	case rec.Status != StatusActive:
		reason = "app inactive"
	}
	if reason != "" {
		r := audit.Record{IP: ip, Action: "app.token", Outcome: audit.Failure, Detail: reason}
		if known { // an unknown key may be a secret pasted into the wrong field
			r.Actor, r.Target = req.AppKey, req.AppKey
		}
		s.audit.Record(r)
		return nil, errBadCredentials
	}
	_, span := telemetry.Start(ctx, telemetry.SpanTokenSign)
	tok, err := s.issue(req.AppKey, gen, now, time.Duration(seconds)*time.Second, uuid.NewString())
	span.End()
	if err != nil {
		return nil, err
	}
	// A successful exchange changes nothing in the store: its record is
	// written in the background, and its log line is already out (see
	// docs/operations.md, Audit). A refused one waits for its record.
	s.audit.RecordAsync(audit.Record{Actor: req.AppKey, IP: ip, Action: "app.token", Target: req.AppKey, Outcome: audit.Success})
	return &TokenResponse{
		AccessToken: tok, ApplyType: "Bearer",
		CreateTime: strconv.FormatInt(now.Unix(), 10), Expires: strconv.Itoa(seconds),
		Scope: "", AppKey: req.AppKey, UserID: "Anonymous",
	}, nil
}

// issue signs the AccessToken jti of app in generation gen, issued at now
// and valid for at least ttl.
func (s *Service) issue(app string, gen int64, now time.Time, ttl time.Duration, jti string) (string, error) {
	claims := &issuedClaims{Generation: gen, Subject: app, Exp: ceilSecond(now.Add(ttl)).Unix(), Iat: now.Unix(), ID: jti}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.signKey)
	if err != nil {
		return "", err
	}
	accessIssued.Inc()
	return tok, nil
}

// ceilSecond rounds t up to a whole second, so a token whose exp is in
// whole seconds lives at least as long as asked.
func ceilSecond(t time.Time) time.Time {
	if r := t.Truncate(time.Second); r.Before(t) {
		return r.Add(time.Second)
	}
	return t
}

// bearerToken extracts the token of an "Authorization: Bearer <token>"
// header: the scheme (case-insensitive), exactly one space, a token
// without spaces.
func bearerToken(authorization string) (string, bool) {
	const prefix = "Bearer "
	if len(authorization) <= len(prefix) || !strings.EqualFold(authorization[:len(prefix)], prefix) {
		return "", false
	}
	tok := authorization[len(prefix):]
	return tok, !strings.ContainsAny(tok, " \t")
}

// Verify checks the x-app-key and Authorization headers of a request and
// returns the verified AccessToken. It touches memory only: a cache of
// verified tokens and the app table, so deactivating, deleting or rotating
// an app takes effect as soon as the change feed delivers it.
func (s *Service) Verify(appKey, authorization string) (*Access, error) {
	a, err := s.verify(appKey, authorization)
	if err != nil {
		code := "error"
		if ae, ok := apierror.As(err); ok {
			code = ae.Code
		}
		metrics.TokensVerified.WithLabelValues(metrics.KindAccess, code).Inc()
		return nil, err
	}
	accessVerified.Inc()
	return a, nil
}

func (s *Service) verify(appKey, authorization string) (*Access, error) {
	if appKey == "" {
		return nil, apierror.AppKeyMismatch.WithDetail("x-app-key is missing")
	}
	if authorization == "" {
		return nil, apierror.AccessTokenInvalid.WithDetail("Authorization is missing")
	}
	tok, ok := bearerToken(authorization)
	if !ok {
		return nil, apierror.AccessTokenInvalid.WithDetail("Authorization must be Bearer and the access token")
	}
	now := s.opts.Now()
	c, err := s.parse(tok, now)
	if err != nil {
		return nil, err
	}
	if c.Subject != appKey {
		return nil, apierror.AppKeyMismatch
	}
	rec, ok := s.apps.Get(c.Subject)
	switch {
	case !ok:
		return nil, apierror.AccessTokenInvalid.WithDetail("app deleted")
	case rec.Status != StatusActive:
		return nil, apierror.AccessTokenInvalid.WithDetail("app inactive")
	case !rec.generationLive(c.Generation, now):
		return nil, apierror.AccessTokenInvalid.WithDetail("token revoked")
	}
	return &Access{AppKey: c.Subject, JTI: c.ID, Expires: c.ExpiresAt.Time, Epoch: rec.Epoch}, nil
}

// parse returns the claims of a token in Gatehouse's one form (jwtform)
// whose signature is valid and which has not expired, from the cache when
// possible.
func (s *Service) parse(tok string, now time.Time) (*accessClaims, error) {
	key := tokencache.KeyOf(tok)
	if c, ok := s.cache.Get(key); ok {
		accessCacheHit.Inc()
		if !now.Before(c.ExpiresAt.Time) {
			return nil, apierror.AccessTokenExpired
		}
		return c, nil
	}
	accessCacheMiss.Inc()
	c := new(accessClaims)
	_, err := jwtform.ParseWithClaims(tok, c, func(*jwt.Token) (any, error) { return s.signKey, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }))
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, apierror.AccessTokenExpired
	case err != nil:
		return nil, apierror.AccessTokenInvalid
	case c.Subject == "":
		return nil, apierror.AccessTokenInvalid.WithDetail("token names no app")
	}
	s.cache.Put(key, c, now)
	return c, nil
}

// AccessEpoch checks the x-app-key and Authorization headers of a request
// as Verify does and returns the app's session epoch (see SessionEpoch).
func (s *Service) AccessEpoch(appKey, authorization string) (int64, error) {
	a, err := s.Verify(appKey, authorization)
	if err != nil {
		return 0, err
	}
	return a.Epoch, nil
}
