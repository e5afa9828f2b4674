package httpapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/ccmessaging"
	"github.com/gatehouse/gatehouse/internal/httpapi/wire"
)

// messagingRoutes registers the channel and session admin API (SPEC §5.1)
// and the ccmessaging API (SPEC §5.2–5.4).
func (s *Server) messagingRoutes() {
	if s.Messaging == nil {
		return
	}
	const ch, sess = authz.ResourceChannel, authz.ResourceSession
	m := s.mux
	m.HandleFunc("POST /v4/channels", s.authed(ch, bodyCall(s, func(r *http.Request, req ccmessaging.ChannelRequest) (ccmessaging.Channel, error) {
		return s.Messaging.CreateChannel(r.Context(), s.caller(r), req)
	})))
	m.HandleFunc("GET /v4/channels", s.authed(ch, func(w http.ResponseWriter, r *http.Request) {
		wire.WriteJSON(w, http.StatusOK, newList(s.Messaging.ListChannels()))
	}))
	m.HandleFunc("GET /v4/channels/{id}", s.authed(ch, func(w http.ResponseWriter, r *http.Request) {
		c, err := s.Messaging.GetChannel(r.PathValue("id"))
		s.answer(w, r, c, err)
	}))
	m.HandleFunc("PUT /v4/channels/{id}", s.authed(ch, bodyCall(s, func(r *http.Request, req ccmessaging.UpdateChannelRequest) (ccmessaging.Channel, error) {
		return s.Messaging.UpdateChannel(r.Context(), s.caller(r), r.PathValue("id"), req)
	})))
	m.HandleFunc("DELETE /v4/channels/{id}", s.authed(ch, func(w http.ResponseWriter, r *http.Request) {
		s.answerEmpty(w, r, s.Messaging.DeleteChannel(r.Context(), s.caller(r), r.PathValue("id")))
	}))
	m.HandleFunc("GET /v4/ccmessaging-sessions", s.authed(sess, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		wire.WriteJSON(w, http.StatusOK, newList(s.Messaging.Sessions(q.Get("channelId"), q.Get("userId"))))
	}))
	m.HandleFunc("DELETE /v4/ccmessaging-sessions/{channelId}/{userId...}", s.authed(sess, func(w http.ResponseWriter, r *http.Request) {
		s.answerEmpty(w, r, s.Messaging.KillSession(r.Context(), s.caller(r), r.PathValue("channelId"), r.PathValue("userId")))
	}))
	api := s.ccmessagingAPI()
	m.dispatch(wire.CCMessagingPrefix, api)
	m.dispatch(strings.TrimSuffix(wire.CCMessagingPrefix, "/"), api)
}

// ccmessagingAPI dispatches every path under /apiaccess/ccmessaging/:
// Gatehouse's own endpoints, else the gateway's upstream for the path, else
// 404, errors answered {"resultCode":"1","resultDesc":"..."}.
func (s *Server) ccmessagingAPI() http.HandlerFunc {
	endpoints := map[string]map[string]http.HandlerFunc{
		wire.CCMessagingPrefix + "applyToken": {http.MethodPost: s.applyToken},
		wire.CCMessagingPrefix + "session": {
			http.MethodGet:    s.ccmProtected(s.getSession),
			http.MethodDelete: s.ccmProtected(s.endSession),
		},
	}
	for path, methods := range endpoints {
		for m := range methods {
			s.mux.record(m + " " + path)
		}
	}
	return func(w http.ResponseWriter, r *http.Request) {
		methods, ok := endpoints[r.URL.Path]
		if !ok {
			if s.upstream(w, r) {
				return
			}
			s.errs.WriteCCM(w, r, apierror.NotFound.WithDetail("unknown path"))
			return
		}
		h, ok := methods[r.Method]
		if !ok {
			allowed := make([]string, 0, len(methods))
			for m := range methods {
				allowed = append(allowed, m)
			}
			slices.Sort(allowed)
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			s.errs.WriteCCM(w, r, apierror.MethodNotAllowed)
			return
		}
		if declaresTooLarge(r) {
			s.errs.WriteCCM(w, r, errTooLarge)
			return
		}
		h(w, r)
	}
}

// applyToken is POST /apiaccess/ccmessaging/applyToken: rate limited, then
// the app's AccessToken, then the body.
func (s *Server) applyToken(w http.ResponseWriter, r *http.Request) {
	ip := s.proxies.ClientIP(r)
	if !s.limiter.allow(ip) {
		s.errs.WriteCCM(w, r, apierror.TooManyRequests)
		return
	}
	app, err := s.Messaging.VerifyApp(r.Header.Get(wire.AppKeyHeader), r.Header.Get("Authorization"))
	if err != nil {
		s.errs.WriteCCM(w, r, err)
		return
	}
	wire.Authenticated(r, wire.FamilyApp, app.Key)
	var req ccmessaging.ApplyRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.errs.WriteCCM(w, r, err)
		return
	}
	tok, err := s.Messaging.ApplyToken(r.Context(), app, req, ip)
	if err != nil {
		s.errs.WriteCCM(w, r, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, struct {
		Token      string `json:"token"`
		ResultCode string `json:"resultCode"`
		ResultDesc string `json:"resultDesc"`
	}{tok, "0", ""})
}

// ccmProtected wraps h so it runs only for a request with valid
// ccmessaging credentials; a renewed token is returned in the
// ccmessaging-token response header.
func (s *Server) ccmProtected(h func(http.ResponseWriter, *http.Request, *ccmessaging.Identity)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, renewed, err := s.Messaging.Verify(r.Context(), wire.SessionCredentials(r, s.proxies.ClientIP(r)))
		if err != nil {
			s.errs.WriteCCM(w, r, err)
			return
		}
		wire.AuthenticatedSession(r, id)
		if renewed != "" {
			w.Header().Set(wire.SessionTokenHeader, renewed)
		}
		h(w, r, id)
	}
}

func (s *Server) getSession(w http.ResponseWriter, _ *http.Request, id *ccmessaging.Identity) {
	wire.WriteJSON(w, http.StatusOK, struct {
		ResultCode       string `json:"resultCode"`
		UserID           string `json:"userId"`
		UserName         string `json:"userName"`
		ChannelID        string `json:"channelId"`
		Locale           string `json:"locale"`
		ExpiresAt        int64  `json:"expiresAt"`
		SessionExpiresAt int64  `json:"sessionExpiresAt"`
	}{"0", id.UserID, id.UserName, id.ChannelID, id.Locale, id.Expires.Unix(), id.SessionExpires.Unix()})
}

func (s *Server) endSession(w http.ResponseWriter, r *http.Request, id *ccmessaging.Identity) {
	if err := s.Messaging.EndSession(r.Context(), id, s.proxies.ClientIP(r)); err != nil {
		s.errs.WriteCCM(w, r, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, wire.CCMResult{ResultCode: "0"})
}
