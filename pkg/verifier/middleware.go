package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

type claimsKey struct{}

// FromContext returns the claims Middleware stored in a request's
// context.
func FromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok
}

// Middleware wraps next so it runs only for requests with a valid engine
// token in Authorization; next finds the claims with FromContext. Other
// requests are answered 401 in Gatehouse's error model
// ({"errorCode","errorMessage","detail"}), with Gatehouse's codes:
// 401204 without a header, 401205 for an expired token, 401201 otherwise.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := v.VerifyHeader(r.Context(), r.Header.Get("Authorization"))
		if err != nil {
			writeUnauthorized(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, c)))
	})
}

// errorBody is Gatehouse's error model.
type errorBody struct {
	Code    string `json:"errorCode"`
	Message string `json:"errorMessage"`
	Detail  string `json:"detail,omitempty"`
}

func writeUnauthorized(w http.ResponseWriter, err error) {
	body := errorBody{Code: "401201", Message: "Request unauthorized", Detail: detail(err)}
	switch {
	case errors.Is(err, ErrNoToken):
		body = errorBody{Code: "401204", Message: "No authorization header"}
	case errors.Is(err, ErrExpired):
		body = errorBody{Code: "401205", Message: "Token is expired"}
	}
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write(b)
}

// detail is the error's text without the package prefix.
func detail(err error) string { return strings.TrimPrefix(err.Error(), "verifier: ") }
