package wire

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/ccmessaging"
)

// RequestIDHeader carries a request's id: accepted from trusted proxies,
// generated otherwise, echoed in the answer and passed to upstreams.
const RequestIDHeader = "X-Request-Id"

// maxRequestID bounds an accepted request id.
const maxRequestID = 128

// Access is what a request's access log line says about its caller:
// the family of the credential that authenticated it ("engine",
// "ccmessaging", "app") and its subject (account, channel/user, app
// key). It never holds a credential.
type Access struct {
	Family, Subject string
}

type accessKey struct{}

// WithAccess returns r carrying an empty Access that handlers fill in
// with Authenticated, and that Access.
func WithAccess(r *http.Request) (*http.Request, *Access) {
	a := &Access{}
	return r.WithContext(context.WithValue(r.Context(), accessKey{}, a)), a
}

// Authenticated records, for the access log, that r was authenticated by
// a credential of family whose subject is subject. Requests outside
// WithAccess are left alone.
func Authenticated(r *http.Request, family, subject string) {
	if a, ok := r.Context().Value(accessKey{}).(*Access); ok {
		a.Family, a.Subject = family, subject
	}
}

// RequestID returns the id of r: its X-Request-Id when the peer is a
// trusted proxy and the value is a plausible id (1 to 128 visible ASCII
// characters), else a new random one. It sets the header of r to the id,
// so that upstreams receive it.
func (ps *Proxies) RequestID(r *http.Request) string {
	id := r.Header.Get(RequestIDHeader)
	if !ps.fromTrusted(r) || !validRequestID(id) {
		var b [16]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	r.Header.Set(RequestIDHeader, id)
	return id
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// The credential families of the access log.
const (
	FamilyEngine      = "engine"      // an engine token; subject: the account
	FamilyCCMessaging = "ccmessaging" // a ccmessaging-token; subject: channel/user
	FamilyApp         = "app"         // an app's AccessToken; subject: the app key
)

// AuthenticatedSession records, for the access log, that r was
// authenticated by the ccmessaging session id.
func AuthenticatedSession(r *http.Request, id *ccmessaging.Identity) {
	Authenticated(r, FamilyCCMessaging, id.ChannelID+"/"+id.UserID)
}
