package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/httpapi/wire"
	"github.com/gatehouse/gatehouse/internal/keyring"
)

func (s *Server) keyRoutes() {
	s.mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", s.jwksCacheControl())
		_, _ = w.Write(s.Keys.JWKS())
	})
	s.mux.HandleFunc("GET /.well-known/openid-configuration", s.discovery)
	s.mux.HandleFunc("GET /v4/keys", s.authed(authz.ResourceKey, func(w http.ResponseWriter, r *http.Request) {
		wire.WriteJSON(w, http.StatusOK, newList(s.Keys.Keys()))
	}))
	s.mux.HandleFunc("POST /v4/keys/rotate", s.authed(authz.ResourceKey, s.rotate))
}

// jwksCacheControl is the Cache-Control of the JWKS and the discovery
// document: public, for the key ring's cache lifetime, which is never
// longer than the pre-publication of a new key.
func (s *Server) jwksCacheControl() string {
	return "public, max-age=" + strconv.Itoa(int(s.Keys.CacheLifetime()/time.Second))
}

// rotateRequest is the optional body of POST /v4/keys/rotate.
type rotateRequest struct {
	// Immediate makes the new key sign at once (emergency rotation)
	// instead of after the pre-publication time.
	Immediate bool `json:"immediate"`
	// Revoke, with Immediate, makes every earlier key stop verifying at
	// once, and with it every token it signed.
	Revoke bool `json:"revoke"`
}

// rotate answers POST /v4/keys/rotate: the new key, pending until its
// activation time unless the body asks for an immediate rotation. The
// body may be empty.
func (s *Server) rotate(w http.ResponseWriter, r *http.Request) {
	var req rotateRequest
	if r.ContentLength != 0 && !s.decode(w, r, &req) {
		return
	}
	k, err := s.rotateKey(r.Context(), s.caller(r), keyring.RotateOptions{Immediate: req.Immediate, Revoke: req.Revoke})
	s.answer(w, r, k, err)
}

// discoveryDocument is GET /.well-known/openid-configuration: the fields
// generic JWT middleware reads to find the keys of a token issuer. It is
// not a full OpenID Provider's metadata: Gatehouse has no authorization
// endpoint and issues no ID tokens.
type discoveryDocument struct {
	Issuer                string   `json:"issuer"`
	JWKSURI               string   `json:"jwks_uri"`
	TokenEndpoint         string   `json:"token_endpoint"`
	ResponseTypes         []string `json:"response_types_supported"`
	SubjectTypes          []string `json:"subject_types_supported"`
	SigningAlgs           []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthAlgs []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	ClaimsSupported       []string `json:"claims_supported"`
}

// discovery answers GET /.well-known/openid-configuration. The issuer is
// Options.Issuer, which engine tokens then carry as iss, or else the
// origin the request was sent to (its scheme as a trusted proxy says:
// wire.Proxies.Scheme).
func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	iss, claims := s.issuer, []string{"account", "roles", "exp", "iat", "jti"}
	if iss != "" {
		claims = append(claims, "iss")
	} else {
		iss = s.proxies.Scheme(r) + "://" + r.Host
	}
	w.Header().Set("Cache-Control", s.jwksCacheControl())
	wire.WriteJSON(w, http.StatusOK, discoveryDocument{
		Issuer:                iss,
		JWKSURI:               iss + "/.well-known/jwks.json",
		TokenEndpoint:         iss + "/v4/token",
		ResponseTypes:         []string{"token"},
		SubjectTypes:          []string{"public"},
		SigningAlgs:           []string{keyring.Algorithm},
		TokenEndpointAuthAlgs: []string{keyring.Algorithm},
		ClaimsSupported:       claims,
	})
}

// rotateKey rotates the key ring for c as o asks and audits it; the API
// and the console both rotate through it.
func (s *Server) rotateKey(ctx context.Context, c authz.Caller, o keyring.RotateOptions) (keyring.KeyInfo, error) {
	k, err := s.Keys.RotateWith(ctx, o)
	if errors.Is(err, keyring.ErrRevokeNeedsImmediate) {
		err = apierror.InvalidParams.WithDetail("revoke needs immediate")
	}
	if err = apierror.FromStore(err); err != nil {
		s.Audit.Change(c.Account, c.IP, "key.rotate", k.ID, err)
		return k, err
	}
	rec := audit.Record{Actor: c.Account, IP: c.IP, Action: "key.rotate", Target: k.ID, Outcome: audit.Success}
	switch {
	case o.Revoke:
		rec.Detail = "immediate; earlier keys revoked"
	case o.Immediate:
		rec.Detail = "immediate"
	default:
		rec.Detail = "signs from " + k.Activates.Format(time.RFC3339)
	}
	s.Audit.Record(rec)
	return k, nil
}

// listAudit answers GET /v4/audit?limit=N (newest first; default 100, at
// most 1000).
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			s.errs.Write(w, r, apierror.InvalidParams.WithDetail("limit must be 1 to 1000"))
			return
		}
		limit = n
	}
	recs, err := s.Audit.List(r.Context(), limit)
	s.answer(w, r, newList(recs), err)
}
