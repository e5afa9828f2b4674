package gateway

import (
	"net/http"

	"github.com/gatehouse/gatehouse/internal/httpapi/wire"
)

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
	id, renewed, err := g.cfg.Sessions.Verify(r.Context(), wire.SessionCredentials(r, g.cfg.Proxies.ClientIP(r)))
	if err != nil {
		return identity{}, err
	}
	wire.AuthenticatedSession(r, id)
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
