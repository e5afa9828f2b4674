package httpapi

import (
	"context"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/engine"
	"github.com/gatehouse/gatehouse/internal/httpapi/wire"
)

type principalKey struct{}

// principal returns the verified identity of an authenticated request.
func principal(r *http.Request) *engine.Principal {
	p, _ := r.Context().Value(principalKey{}).(*engine.Principal)
	return p
}

// caller describes the request's principal for domain operations.
func (s *Server) caller(r *http.Request) authz.Caller { return s.callerOf(r, principal(r)) }

// callerOf describes p, the verified identity behind r (nil: none), for
// domain operations; the API and the console both use it.
func (s *Server) callerOf(r *http.Request, p *engine.Principal) authz.Caller {
	c := authz.Caller{IP: s.proxies.ClientIP(r)}
	if p != nil {
		c.Account, c.Roles = p.Account, p.Roles
	}
	return c
}

// authed wraps h so it runs only for a valid engine token whose roles
// grant the verb of the request's method on resource. An empty resource
// needs a token but no permission.
func (s *Server) authed(resource string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r, s.Engine.Verify, r.Header.Get("Authorization"), resource, authz.VerbForMethod(r.Method))
		if err != nil {
			s.errs.Write(w, r, err)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	}
}

// authenticate verifies the engine credential cred of r with verify (the
// Authorization header with Engine.Verify for the API, the session
// cookie's token with Engine.VerifyToken for the console), authorizes
// verb on resource ("": a valid token only) and records the account for
// the access log. It returns the principal whenever the credential
// verifies, with the refusal of authorization if any.
func (s *Server) authenticate(r *http.Request, verify func(string) (*engine.Principal, error), cred, resource, verb string) (*engine.Principal, error) {
	p, err := verify(cred)
	if err != nil {
		return nil, err
	}
	wire.Authenticated(r, wire.FamilyEngine, p.Account)
	if resource != "" {
		err = s.Engine.Authorize(p, resource, verb, nil)
	}
	return p, err
}

// consoleAuthenticate authenticates the token of a console session
// cookie as the API does a request's bearer token.
func (s *Server) consoleAuthenticate(r *http.Request, tok, resource, verb string) (*engine.Principal, error) {
	return s.authenticate(r, s.Engine.VerifyToken, tok, resource, verb)
}

// limited wraps h with the per-client-IP rate limit.
func (s *Server) limited(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.limiter.allow(s.proxies.ClientIP(r)) {
			s.errs.Write(w, r, apierror.TooManyRequests)
			return
		}
		h(w, r)
	}
}

// list is the {"total","data"} envelope of Service Center's list answers.
type list[T any] struct {
	Total int `json:"total"`
	Data  []T `json:"data"`
}

func newList[T any](data []T) list[T] {
	if data == nil {
		data = []T{}
	}
	return list[T]{Total: len(data), Data: data}
}

func (s *Server) engineRoutes() {
	const acc, role = authz.ResourceAccount, authz.ResourceRole
	m := s.mux
	m.HandleFunc("POST /v4/token", s.limited(s.login))
	m.HandleFunc("DELETE /v4/token", s.authed("", s.logout))

	m.HandleFunc("POST /v4/accounts", s.authed(acc, bodyWrite(s, func(r *http.Request, req engine.CreateAccountRequest) error {
		return s.Engine.CreateAccount(r.Context(), s.caller(r), req)
	})))
	m.HandleFunc("POST /v4/accounts/batch-create", s.authed(acc, s.batchCreateAccounts))
	m.HandleFunc("GET /v4/accounts", s.authed(acc, func(w http.ResponseWriter, r *http.Request) {
		wire.WriteJSON(w, http.StatusOK, newList(s.Engine.ListAccounts()))
	}))
	m.HandleFunc("GET /v4/accounts/{name}", s.authed(acc, func(w http.ResponseWriter, r *http.Request) {
		a, err := s.Engine.GetAccount(r.PathValue("name"))
		s.answer(w, r, a, err)
	}))
	m.HandleFunc("PUT /v4/accounts/{name}", s.authed(acc, bodyWrite(s, func(r *http.Request, req engine.UpdateAccountRequest) error {
		return s.Engine.UpdateAccount(r.Context(), s.caller(r), r.PathValue("name"), req)
	})))
	m.HandleFunc("DELETE /v4/accounts/{name}", s.authed(acc, func(w http.ResponseWriter, r *http.Request) {
		s.answerEmpty(w, r, s.Engine.DeleteAccount(r.Context(), s.caller(r), r.PathValue("name")))
	}))
	m.HandleFunc("POST /v4/accounts/{name}/password", s.authed("", bodyWrite(s, func(r *http.Request, req engine.ChangePasswordRequest) error {
		return s.Engine.ChangePassword(r.Context(), s.caller(r), r.PathValue("name"), req)
	})))

	m.HandleFunc("GET /v4/roles", s.authed(role, func(w http.ResponseWriter, r *http.Request) {
		wire.WriteJSON(w, http.StatusOK, newList(s.Engine.ListRoles()))
	}))
	m.HandleFunc("POST /v4/roles", s.authed(role, bodyWrite(s, func(r *http.Request, req engine.RoleRequest) error {
		return s.Engine.CreateRole(r.Context(), s.caller(r), req)
	})))
	m.HandleFunc("GET /v4/roles/{name}", s.authed(role, func(w http.ResponseWriter, r *http.Request) {
		ro, err := s.Engine.GetRole(r.PathValue("name"))
		s.answer(w, r, ro, err)
	}))
	m.HandleFunc("PUT /v4/roles/{name}", s.authed(role, bodyWrite(s, func(r *http.Request, req engine.RoleRequest) error {
		return s.Engine.UpdateRole(r.Context(), s.caller(r), r.PathValue("name"), req)
	})))
	m.HandleFunc("DELETE /v4/roles/{name}", s.authed(role, func(w http.ResponseWriter, r *http.Request) {
		s.answerEmpty(w, r, s.Engine.DeleteRole(r.Context(), s.caller(r), r.PathValue("name")))
	}))
	m.HandleFunc("GET /v4/self-perms", s.authed("", func(w http.ResponseWriter, r *http.Request) {
		wire.WriteJSON(w, http.StatusOK, map[string]any{"perms": s.Engine.SelfPerms(principal(r))})
	}))

	m.HandleFunc("GET /v4/account-locks", s.authed(acc, func(w http.ResponseWriter, r *http.Request) {
		locks, err := s.Engine.Locks(r.Context())
		s.answer(w, r, newList(locks), err)
	}))
	m.HandleFunc("DELETE /v4/account-locks/{name}", s.authed(acc, func(w http.ResponseWriter, r *http.Request) {
		s.answerEmpty(w, r, s.Engine.ClearLocks(r.Context(), s.caller(r), r.PathValue("name")))
	}))
	m.HandleFunc("GET /v4/audit", s.authed("audit", s.listAudit))
}

// answer renders v, or err when it is not nil.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		s.errs.Write(w, r, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, v)
}

// answerEmpty renders an empty 200, or err when it is not nil.
func (s *Server) answerEmpty(w http.ResponseWriter, r *http.Request, err error) {
	if err != nil {
		s.errs.Write(w, r, err)
		return
	}
	writeEmpty(w)
}

// decode wraps decodeJSON and renders its error; it reports success.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := decodeJSON(w, r, v); err != nil {
		s.errs.Write(w, r, err)
		return false
	}
	return true
}

// bodyCall decodes the request body into a Req, then renders what call
// answers.
func bodyCall[Req, Resp any](s *Server, call func(r *http.Request, req Req) (Resp, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req Req
		if s.decode(w, r, &req) {
			v, err := call(r, req)
			s.answer(w, r, v, err)
		}
	}
}

// bodyWrite decodes the request body into a Req, then answers an empty
// 200 when write succeeds, as Service Center does.
func bodyWrite[Req any](s *Server, write func(r *http.Request, req Req) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req Req
		if s.decode(w, r, &req) {
			s.answerEmpty(w, r, write(r, req))
		}
	}
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req engine.LoginRequest
	if !s.decode(w, r, &req) {
		return
	}
	tok, err := s.Engine.Login(r.Context(), req, s.proxies.ClientIP(r))
	s.answer(w, r, map[string]string{"token": tok}, err)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	s.answerEmpty(w, r, s.Engine.Logout(r.Context(), principal(r), s.proxies.ClientIP(r)))
}

func (s *Server) batchCreateAccounts(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Accounts []engine.CreateAccountRequest `json:"accounts"`
	}
	if !s.decode(w, r, &req) {
		return
	}
	res, err := s.Engine.BatchCreateAccounts(r.Context(), s.caller(r), req.Accounts)
	s.answer(w, r, map[string]any{"accounts": res}, err)
}
