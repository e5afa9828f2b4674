package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/apierror"
)

// MaxBody is the largest request body accepted (SPEC §6).
const MaxBody = 64 << 10

// writeEmpty answers 200 with an empty body, as Service Center does for
// successful writes.
func writeEmpty(w http.ResponseWriter) { w.WriteHeader(http.StatusOK) }

// errTooLarge answers a body over MaxBody.
var errTooLarge = apierror.TooLarge.Detailf("the body exceeds %d bytes", MaxBody)

// declaresTooLarge reports whether r declares a body over MaxBody. Such a
// request is refused before anything else, authentication included:
// waiting for a body that is never sent would hold the connection until
// the read timeout. A body without a declared length (chunked) is cut at
// MaxBody as it is read.
func declaresTooLarge(r *http.Request) bool { return r.ContentLength > MaxBody }

// decodeJSON reads the request body (at most MaxBody) into v. Unknown
// fields are ignored; malformed JSON and wrong types are 400 400001, an
// oversize body 413 413001.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errTooLarge
		}
		return apierror.InvalidParams.WithDetail("cannot read the body")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return apierror.InvalidParams.WithDetail("the body is empty")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return apierror.InvalidParams.WithDetail(jsonErrorDetail(err))
	}
	return nil
}

// jsonErrorDetail describes a decoding error without echoing the input.
func jsonErrorDetail(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		kind := jsonKind(te.Type.Kind().String())
		if te.Field == "" {
			return "the body must be " + kind
		}
		return "field " + te.Field + " must be " + kind
	}
	return "the body is not valid JSON"
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	case "bool":
		return "a boolean"
	case "ptr":
		return "a valid value"
	}
	return "a number"
}

// discard logs nothing; used when no logger is configured.
var discard = slog.New(slog.NewTextHandler(io.Discard, nil))
