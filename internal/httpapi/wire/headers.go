package wire

import (
	"net/http"

	"github.com/gatehouse/gatehouse/internal/ccmessaging"
)

// The headers of a protected ccmessaging request (SPEC §5.4) besides
// Authorization, which carries the app's AccessToken.
const (
	AppKeyHeader       = "X-App-Key"
	SessionTokenHeader = "Ccmessaging-Token"
)

// SessionHeaders are the three credentials of a ccmessaging request.
var SessionHeaders = []string{AppKeyHeader, "Authorization", SessionTokenHeader}

// SessionCredentials reads the three AICC headers of a ccmessaging request
// sent by the client at ip.
func SessionCredentials(r *http.Request, ip string) ccmessaging.Credentials {
	return ccmessaging.Credentials{
		AppKey:        r.Header.Get(AppKeyHeader),
		Authorization: r.Header.Get("Authorization"),
		Token:         r.Header.Get(SessionTokenHeader),
		IP:            ip,
	}
}
