package engine

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/tokencache"
	"github.com/gatehouse/gatehouse/pkg/jwtform"
)

// Claims are the claims of an engine token: Service Center's account,
// roles and exp, plus iat, jti and cred.
type Claims struct {
	Account string   `json:"account"`
	Roles   []string `json:"roles"`
	jwt.RegisteredClaims
	// Cred is absent from tokens of Service Center and of earlier
	// Gatehouse versions; check judges those by their issue instant.
	Cred *Credential `json:"cred,omitempty"`
}

// Credential is the credential version of a token: the account record
// its password was checked against, named by the record's id and its
// revocation watermark at the time. Every password, role or status change
// moves the watermark and a re-created account has a new id, so a token
// stays valid only while the account's record is the one its login saw
// (see revokedBy). The version is ordered by the store, not by a clock.
type Credential struct {
	ID      string `json:"id"`
	Version int64  `json:"ver"`
}

// Principal is the verified identity behind a request.
type Principal struct {
	Account string
	Roles   []string // the account's current roles
	JTI     string
	Expires time.Time
}

var (
	cacheHit    = metrics.CacheLookups.WithLabelValues(metrics.KindEngine, "hit")
	cacheMiss   = metrics.CacheLookups.WithLabelValues(metrics.KindEngine, "miss")
	verifiedOK  = metrics.TokensVerified.WithLabelValues(metrics.KindEngine, "ok")
	issuedCount = metrics.TokensIssued.WithLabelValues(metrics.KindEngine)
)

// LoginRequest is the body of POST /v4/token.
type LoginRequest struct {
	Name                string `json:"name"`
	Password            string `json:"password"`
	TokenExpirationTime string `json:"tokenExpirationTime"`
}

// Login checks a name and password and issues a token. Unknown names cost
// one password hash like wrong passwords do, and count toward lockout;
// only failures count. Every login is counted in metrics.Logins by its
// result.
func (e *Engine) Login(ctx context.Context, req LoginRequest, ip string) (string, error) {
	tok, err := e.login(ctx, req, ip)
	metrics.Logins.WithLabelValues(loginResult(err)).Inc()
	return tok, err
}

// loginResult is the result of a login that answered err, as
// metrics.Logins labels it.
func loginResult(err error) string {
	switch {
	case err == nil:
		return metrics.LoginOK
	case errors.Is(err, apierror.WrongCredentials):
		return metrics.LoginWrongCredentials
	case errors.Is(err, apierror.AccountBlocked):
		return metrics.LoginLocked
	case errors.Is(err, apierror.AccountInactive):
		return metrics.LoginInactive
	case errors.Is(err, apierror.InvalidParams):
		return metrics.LoginInvalid
	}
	return metrics.LoginError
}

func (e *Engine) login(ctx context.Context, req LoginRequest, ip string) (string, error) {
	ttl := e.opts.TokenTTL
	if req.TokenExpirationTime != "" {
		d, err := time.ParseDuration(req.TokenExpirationTime)
		if err != nil || d < MinRequestedTTL || d > MaxRequestedTTL {
			return "", apierror.InvalidParams.Detailf("tokenExpirationTime must be a duration between %s and %s", "15m", "24h")
		}
		ttl = d
	}
	rec, exists := e.accounts.Get(req.Name)
	// A name no account can have is not counted: there is nothing to
	// protect, and counting would let anyone write arbitrary keys.
	var at *attempt
	if password.ValidName(req.Name) {
		var err error
		if at, err = e.startAttempt(ctx, req.Name, ip); err != nil {
			if errors.Is(err, apierror.AccountBlocked) {
				r := audit.Record{IP: ip, Action: "login", Outcome: audit.Failure, Detail: "account blocked"}
				if exists {
					r.Actor, r.Target = req.Name, req.Name
				}
				e.audit.Record(r)
			}
			return "", err
		}
	}
	ok, rehash := false, false
	if exists && req.Password != "" {
		var err error
		ok, rehash, err = e.verifyPassword(ctx, req.Password, rec.PasswordHash)
		if err != nil {
			e.logger.Error("stored password hash unusable", "account", req.Name, "err", err)
		}
	} else {
		e.verifyDummy(ctx, req.Password)
	}
	if !ok {
		// An unknown name is not recorded: people type passwords into the
		// name field, and audit records never hold a password.
		r := audit.Record{IP: ip, Action: "login", Outcome: audit.Failure, Detail: "unknown account"}
		if exists {
			r.Actor, r.Target, r.Detail = req.Name, req.Name, "wrong password"
		}
		e.audit.Record(r)
		if err := at.fail(ctx); err != nil {
			return "", err
		}
		return "", apierror.WrongCredentials
	}
	// The password is verified: earlier failures were no guesses.
	if err := at.succeed(ctx); err != nil {
		return "", err
	}
	if rec.Status == StatusInactive {
		e.audit.Record(audit.Record{Actor: req.Name, IP: ip, Action: "login", Target: req.Name, Outcome: audit.Failure, Detail: "account inactive"})
		return "", apierror.AccountInactive
	}
	if rehash {
		e.rehash(ctx, req.Name, req.Password, rec.PasswordHash)
	}
	tok, err := e.issue(ctx, rec, ttl)
	if err != nil {
		return "", err
	}
	e.audit.Record(audit.Record{Actor: req.Name, IP: ip, Action: "login", Target: req.Name, Outcome: audit.Success})
	return tok, nil
}

// issue signs a token for rec, which must be the record the password was
// checked against: the token carries its credential version, so a change
// stored after that check revokes the token however late the token is
// signed. Its jti records the instant of issue in milliseconds, kept after
// the account's revocation watermark so that a verifier that knows only
// the watermark does not take a token issued right after a change for
// revoked; iat is the true time, since Service Center's verifiers refuse
// an iat in the future. The signature is a token.sign span of ctx's trace.
func (e *Engine) issue(ctx context.Context, rec *accountRecord, ttl time.Duration) (string, error) {
	now := e.opts.Now()
	claims := &Claims{
		Account: rec.Name,
		Roles:   append([]string{}, rec.Roles...),
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    e.opts.Issuer,
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        tokenID(max(now.UnixMilli(), rec.RevokedBefore+1)),
		},
		Cred: &Credential{ID: rec.ID, Version: rec.RevokedBefore},
	}
	_, span := telemetry.Start(ctx, telemetry.SpanTokenSign)
	tok, err := e.signer.Sign(claims)
	span.End()
	if err != nil {
		return "", err
	}
	issuedCount.Inc()
	return tok, nil
}

// tokenID returns a jti: a version 7 UUID (RFC 9562) carrying ms, an
// instant in unix milliseconds, and 74 random bits.
func tokenID(ms int64) string {
	id := uuid.New()
	for i := range 6 {
		id[i] = byte(ms >> (40 - 8*i))
	}
	id[6] = id[6]&0x0f | 0x70
	return id.String()
}

// issuedAtMs returns when a token was issued, in unix milliseconds
// (jwtform.IssuedAtMs).
func issuedAtMs(c *Claims) int64 { return jwtform.IssuedAtMs(&c.RegisteredClaims) }

// rehash replaces a hash in a legacy format (or with old parameters) with
// an argon2id hash at the current parameters, unless it changed meanwhile.
// Failure is logged, not fatal: the login already succeeded.
func (e *Engine) rehash(ctx context.Context, name, pw, old string) {
	hash, err := e.hashPassword(ctx, pw)
	if err == nil {
		_, err = e.updateAccount(ctx, name, func(r *accountRecord) error {
			if r.PasswordHash != old {
				return errNoChange
			}
			r.PasswordHash = hash
			return nil
		})
	}
	if err != nil && !errors.Is(err, errNoChange) {
		e.logger.Warn("password rehash failed", "account", name, "err", err)
	}
}

// Verify checks the Authorization header of a request and returns the
// principal. It touches memory only: a verified-token cache, the account
// view and the revocation set.
func (e *Engine) Verify(authorization string) (*Principal, error) {
	if authorization == "" {
		return nil, apierror.NoAuthHeader
	}
	scheme, tok, ok := strings.Cut(authorization, " ")
	if !ok || tok == "" || strings.Contains(tok, " ") || !strings.EqualFold(scheme, "Bearer") {
		return nil, apierror.Unauthorized.WithDetail("invalid auth header")
	}
	return e.VerifyToken(tok)
}

// VerifyToken checks an engine token, as Verify does the token of a
// Bearer Authorization header, and returns the principal: for a token
// that arrives some other way (the admin console's session cookie).
func (e *Engine) VerifyToken(tok string) (*Principal, error) {
	claims, err := e.parse(tok)
	if err != nil {
		return nil, err
	}
	p, err := e.check(claims)
	if err != nil {
		return nil, err
	}
	verifiedOK.Inc()
	return p, nil
}

// parse returns the claims of a token in Gatehouse's one form (jwtform)
// whose signature is valid and which has not expired, from the cache when
// possible. A re-encoded variant of a cached token misses the cache, which
// is keyed by the token's text, and fails jwtform's check. An entry cached
// before a key stopped verifying (a revoking rotation) counts as a miss,
// so the token's key is looked up again.
func (e *Engine) parse(tok string) (*Claims, error) {
	key := tokencache.KeyOf(tok)
	now := e.opts.Now()
	withdrawn := e.signer.Withdrawn()
	if v, ok := e.cache.Get(key); ok && v.withdrawn == withdrawn {
		cacheHit.Inc()
		c := v.claims
		if !now.Before(c.ExpiresAt.Add(e.opts.Leeway)) {
			return nil, apierror.TokenExpired
		}
		return c, nil
	}
	cacheMiss.Inc()
	c := new(Claims)
	_, err := jwtform.ParseWithClaims(tok, c, e.signer.Keyfunc,
		jwt.WithValidMethods([]string{"RS512"}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(e.opts.Leeway),
		jwt.WithTimeFunc(e.opts.Now))
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, apierror.TokenExpired
	case err != nil:
		return nil, apierror.Unauthorized.WithDetail(tokenErrorDetail(err))
	case c.Account == "":
		return nil, apierror.Unauthorized.WithDetail("token has no account")
	}
	e.cache.Put(key, verified{claims: c, withdrawn: withdrawn}, now)
	return c, nil
}

// tokenErrorDetail names the cause of a failed verification without
// echoing the token.
func tokenErrorDetail(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "token is malformed"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "token signature is invalid"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "token is unverifiable: " + unverifiableCause(err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "token lacks a required claim"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token is not valid yet"
	}
	return "token is invalid"
}

func unverifiableCause(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}

// check applies revocation and account state to verified claims.
func (e *Engine) check(c *Claims) (*Principal, error) {
	if c.ID != "" && e.revoked.Has(c.ID) {
		return nil, apierror.Unauthorized.WithDetail("token revoked")
	}
	rec, ok := e.accounts.Get(c.Account)
	if !ok {
		if c.Account == RootAccount {
			return &Principal{Account: c.Account, Roles: c.Roles, JTI: c.ID, Expires: c.ExpiresAt.Time}, nil
		}
		return nil, apierror.TokenOwnerDeleted
	}
	if revokedBy(c, rec) {
		return nil, apierror.Unauthorized.WithDetail("token revoked")
	}
	if rec.Status == StatusInactive {
		return nil, apierror.AccountInactive
	}
	return &Principal{Account: rec.Name, Roles: rec.Roles, JTI: c.ID, Expires: c.ExpiresAt.Time}, nil
}

// revokedBy reports whether a change of rec revoked the token of c. A
// token with a credential version is revoked when rec is another account
// of the same name or its watermark moved past the version; a version
// ahead of rec means this replica has not yet seen the change the token's
// login saw. A token without one is revoked when issued at or before the
// watermark.
func revokedBy(c *Claims, rec *accountRecord) bool {
	if c.Cred != nil {
		return c.Cred.ID != rec.ID || c.Cred.Version < rec.RevokedBefore
	}
	return issuedAtMs(c) <= rec.RevokedBefore
}

// Logout revokes the token of p until its exp.
func (e *Engine) Logout(ctx context.Context, p *Principal, ip string) error {
	if p.JTI == "" {
		return apierror.InvalidParams.WithDetail("token has no id and cannot be revoked alone; change the password to revoke it")
	}
	val, _ := json.Marshal(revokedRecord{Exp: p.Expires.Unix()})
	key := revokedPrefix + p.JTI
	it, err := e.st.Put(ctx, store.Item{Key: key, Value: val, Expires: p.Expires.Add(e.opts.Leeway + time.Second)})
	if err != nil {
		return apierror.FromStore(err)
	}
	metrics.TokensRevoked.WithLabelValues(metrics.KindEngine, "logout").Inc()
	e.audit.Record(audit.Record{Actor: p.Account, IP: ip, Action: "token.revoke", Target: p.Account, Outcome: audit.Success, Detail: "logout"})
	return e.sync(ctx, key, it.Revision)
}

// Authorize checks that p may apply verb to resource. Root also holds
// the resources no built-in role holds (authz.RootOnly).
func (e *Engine) Authorize(p *Principal, resource, verb string, labels map[string]string) error {
	if p.Account == RootAccount && authz.RootOnly(resource) {
		return nil
	}
	for _, name := range p.Roles {
		if r, ok := e.roles.Get(name); ok && authz.Allows(r.Perms, resource, verb, labels) {
			return nil
		}
	}
	return apierror.NoPermission.Detailf("role has no permissions[%s:%s]", resource, verb)
}

// SelfPerms returns the permissions of every role of p and, for root,
// one more: the resources root alone holds (authz.RootOnlyTypes), as
// Authorize grants them.
func (e *Engine) SelfPerms(p *Principal) []authz.Permission {
	perms := []authz.Permission{}
	for _, name := range p.Roles {
		if r, ok := e.roles.Get(name); ok {
			perms = append(perms, r.Perms...)
		}
	}
	if p.Account == RootAccount {
		perms = append(perms, rootOnlyPerm())
	}
	return perms
}
