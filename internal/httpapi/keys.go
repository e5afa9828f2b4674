package httpapi

import (
	"context"
	"net/http"
	"strconv"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/httpapi/wire"
	"github.com/gatehouse/gatehouse/internal/keyring"
)

func (s *Server) keyRoutes() {
	s.mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=60")
		_, _ = w.Write(s.Keys.JWKS())
	})
	s.mux.HandleFunc("GET /v4/keys", s.authed(authz.ResourceKey, func(w http.ResponseWriter, r *http.Request) {
		wire.WriteJSON(w, http.StatusOK, newList(s.Keys.Keys()))
	}))
	s.mux.HandleFunc("POST /v4/keys/rotate", s.authed(authz.ResourceKey, func(w http.ResponseWriter, r *http.Request) {
		k, err := s.rotateKey(r.Context(), s.caller(r))
		s.answer(w, r, k, err)
	}))
}

// rotateKey rotates the key ring for c and audits it; the API and the
// console both rotate through it.
func (s *Server) rotateKey(ctx context.Context, c authz.Caller) (keyring.KeyInfo, error) {
	k, err := s.Keys.Rotate(ctx)
	rec := audit.Record{Actor: c.Account, IP: c.IP, Action: "key.rotate", Target: k.ID, Outcome: audit.Success}
	if err != nil {
		rec.Outcome = audit.Failure
	}
	s.Audit.Record(rec)
	return k, apierror.FromStore(err)
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
