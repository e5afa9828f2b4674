package httpapi

import (
	"net/http"

	"github.com/gatehouse/gatehouse/internal/apifabric"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/httpapi/wire"
)

// fabricRoutes registers the app admin API (SPEC §4.1) and tokenByAkSk
// (SPEC §4.2).
func (s *Server) fabricRoutes() {
	if s.Fabric == nil {
		return
	}
	const app = authz.ResourceApp
	m := s.mux
	m.HandleFunc("POST /apigovernance/api/oauth/tokenByAkSk", s.limited(s.tokenByAkSk))
	m.HandleFunc("POST /v4/apps", s.authed(app, bodyCall(s, func(r *http.Request, req apifabric.CreateAppRequest) (*apifabric.CreatedApp, error) {
		return s.Fabric.CreateApp(r.Context(), s.caller(r), req)
	})))
	m.HandleFunc("GET /v4/apps", s.authed(app, func(w http.ResponseWriter, r *http.Request) {
		wire.WriteJSON(w, http.StatusOK, newList(s.Fabric.ListApps()))
	}))
	m.HandleFunc("GET /v4/apps/{appKey}", s.authed(app, func(w http.ResponseWriter, r *http.Request) {
		a, err := s.Fabric.GetApp(r.PathValue("appKey"))
		s.answer(w, r, a, err)
	}))
	m.HandleFunc("PUT /v4/apps/{appKey}", s.authed(app, bodyCall(s, func(r *http.Request, req apifabric.UpdateAppRequest) (apifabric.App, error) {
		return s.Fabric.UpdateApp(r.Context(), s.caller(r), r.PathValue("appKey"), req)
	})))
	m.HandleFunc("DELETE /v4/apps/{appKey}", s.authed(app, func(w http.ResponseWriter, r *http.Request) {
		s.answerEmpty(w, r, s.Fabric.DeleteApp(r.Context(), s.caller(r), r.PathValue("appKey")))
	}))
	m.HandleFunc("POST /v4/apps/{appKey}/secret", s.authed(app, s.rotateSecret))
}

// rotateSecret takes an optional body: without one the old secret stops
// working at once.
func (s *Server) rotateSecret(w http.ResponseWriter, r *http.Request) {
	var req apifabric.RotateSecretRequest
	if r.ContentLength != 0 && !s.decode(w, r, &req) {
		return
	}
	sec, err := s.Fabric.RotateSecret(r.Context(), s.caller(r), r.PathValue("appKey"), req)
	s.answer(w, r, sec, err)
}

func (s *Server) tokenByAkSk(w http.ResponseWriter, r *http.Request) {
	var req apifabric.TokenRequest
	if !s.decode(w, r, &req) {
		return
	}
	if v := r.Header.Values("X-Token-Expire"); len(v) > 0 {
		req.Expire = &v[0]
	}
	tok, err := s.Fabric.TokenByAkSk(r.Context(), req, s.proxies.ClientIP(r))
	if err == nil {
		wire.Authenticated(r, wire.FamilyApp, req.AppKey)
	}
	s.answer(w, r, tok, err)
}
