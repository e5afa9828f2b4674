package gateway

import (
	"net/http"

	"github.com/gatehouse/gatehouse/internal/ccmessaging"
)

// Headers of a protected ccmessaging request (SPEC §5.4).
const (
	AppKeyHeader       = "X-App-Key"
	SessionTokenHeader = "Ccmessaging-Token"
)

// consumedSessionHeaders are the credentials a ccmessaging route checks
// and does not forward.
var consumedSessionHeaders = []string{AppKeyHeader, "Authorization", SessionTokenHeader}

// The identity headers of a ccmessaging session.
const (
	HeaderUserID    = "X-Gatehouse-User-Id"
	HeaderChannelID = "X-Gatehouse-Channel-Id"
	HeaderLocale    = "X-Gatehouse-Locale"
	HeaderAppKey    = "X-Gatehouse-App-Key"
)

// checkSession verifies the three ccmessaging headers of r, renewing an
// expired token of a live session.
func (g *Gateway) checkSession(r *http.Request) (identity, error) {
	id, renewed, err := g.cfg.Sessions.Verify(r.Context(), ccmessaging.Credentials{
		AppKey:        r.Header.Get(AppKeyHeader),
		Authorization: r.Header.Get("Authorization"),
		Token:         r.Header.Get(SessionTokenHeader),
		IP:            g.cfg.ClientIP(r),
	})
	if err != nil {
		return identity{}, err
	}
	return identity{
		header: http.Header{
			HeaderUserID:    {id.UserID},
			HeaderChannelID: {id.ChannelID},
			HeaderLocale:    {id.Locale},
			HeaderAppKey:    {id.AppKey},
		},
		renewed: renewed,
	}, nil
}
