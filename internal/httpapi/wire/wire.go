// Package wire holds what every HTTP handler of Gatehouse shares, so that
// each piece of the wire exists once: the two error models (SPEC §2 and
// the ccmessaging {"resultCode":...} model), JSON answers, the client
// address behind trusted proxies, and the three AICC headers of a
// ccmessaging request. The API (internal/httpapi) and the gateway
// (internal/httpapi/gateway) both answer through it.
package wire

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse/internal/apierror"
)

// CCMessagingPrefix is the path prefix of the ccmessaging API; every answer
// under it uses the ccmessaging error model.
const CCMessagingPrefix = "/apiaccess/ccmessaging/"

// Header values of JSON answers, shared by every answer: net/http only
// reads them, and Header.Add appends to a copy.
var (
	jsonContentType = []string{"application/json"}
	noStore         = []string{"no-store"}
)

// WriteJSON answers status with v encoded as JSON, not to be cached.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"errorCode":"500003","errorMessage":"Internal server error"}`)
	}
	h := w.Header()
	h["Content-Type"], h["Cache-Control"] = jsonContentType, noStore
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// CCMResult is the body of every ccmessaging answer without other data.
type CCMResult struct {
	ResultCode string `json:"resultCode"`
	ResultDesc string `json:"resultDesc,omitempty"`
}

// Errors renders errors in either error model. Errors that are not API
// errors are logged and answered 500 without internals.
type Errors struct {
	Logger *slog.Logger
}

// Write renders err in the error model of SPEC §2.
func (e Errors) Write(w http.ResponseWriter, r *http.Request, err error) {
	ae := e.Prepare(w, r, err)
	WriteJSON(w, ae.Status(), ae)
}

// WriteCCM renders err in the ccmessaging model: the error's status and
// {"resultCode":"1","resultDesc":<detail, else message>}.
func (e Errors) WriteCCM(w http.ResponseWriter, r *http.Request, err error) {
	ae := e.Prepare(w, r, err)
	desc := ae.Message
	if ae.Detail != "" {
		desc = ae.Detail
	}
	WriteJSON(w, ae.Status(), CCMResult{ResultCode: "1", ResultDesc: desc})
}

// Prepare returns the API error err is answered as (its status, code
// and message), logging and hiding an error that is not an API error
// behind a 500, and sets what the answer needs besides its body, in any
// error model (see prepare). Write and WriteCCM answer through it, and
// the admin console renders its pages' errors with it.
func (e Errors) Prepare(w http.ResponseWriter, r *http.Request, err error) *apierror.Error {
	ae, ok := apierror.As(err)
	if !ok {
		if e.Logger != nil {
			e.Logger.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		ae = apierror.Internal
	}
	prepare(w, ae)
	return ae
}

// prepare does what an error answer needs besides its body: Retry-After
// on 429. A 413 leaves a body unread: the
// connection is closed after the answer, which net/http sends at once, and
// the rest of the body is read for at most drainTime, so that the server
// neither waits for a body that never comes (net/http would wait for up to
// 256 KiB of it) nor takes it for the next request.
func prepare(w http.ResponseWriter, ae *apierror.Error) {
	switch ae.Code {
	case apierror.TooManyRequests.Code:
		w.Header().Set("Retry-After", "1")
	case apierror.TooLarge.Code:
		w.Header().Set("Connection", "close")
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(drainTime))
	}
}

// drainTime is how long the rest of a refused body is read before the
// connection closes. Closing at once, with the client's body still
// arriving, makes the kernel reset the connection, and a client still
// writing its body then often loses the 413 it was sent.
const drainTime = 500 * time.Millisecond
