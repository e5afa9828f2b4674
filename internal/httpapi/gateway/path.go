package gateway

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/gatehouse/gatehouse/internal/apierror"
)

// maxPeekBody bounds a body the gateway reads to find labels.
const maxPeekBody = 1 << 20

// errPeekTooLarge answers a body over maxPeekBody (with the connection
// closed after it, as every 413).
var errPeekTooLarge = apierror.TooLarge.Detailf("the body exceeds %d bytes", maxPeekBody)

// checkPath refuses paths whose meaning could differ between Gatehouse's
// decision and the upstream's routing: dot segments, repeated slashes
// and encoded slashes or backslashes.
func checkPath(u *url.URL) error {
	p := u.Path
	if !strings.HasPrefix(p, "/") {
		return apierror.InvalidParams.WithDetail("the path must be absolute")
	}
	if c := path.Clean(p); c != p && c+"/" != p {
		return apierror.InvalidParams.WithDetail("the path is not canonical")
	}
	raw := strings.ToLower(u.EscapedPath())
	if strings.Contains(raw, "%2f") || strings.Contains(raw, "%5c") || strings.Contains(p, `\`) {
		return apierror.InvalidParams.WithDetail("the path holds an encoded separator")
	}
	return nil
}

// peekBody reads the request body (at most maxPeekBody) and puts it back
// for the upstream. A body declared larger is refused before it is read.
func peekBody(r *http.Request) ([]byte, error) {
	if r.ContentLength > maxPeekBody {
		return nil, errPeekTooLarge
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxPeekBody+1))
	if err != nil {
		return nil, apierror.InvalidParams.WithDetail("cannot read the body")
	}
	if len(b) > maxPeekBody {
		return nil, errPeekTooLarge
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	return b, nil
}
