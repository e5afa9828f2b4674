// Package apierror holds the error model shared by every API of Gatehouse:
// a six-digit errorCode whose first three digits are the HTTP status, a
// fixed errorMessage per code, and an optional detail. Domain packages
// return these errors; the HTTP layer renders them. Details never carry a
// password, secret or token.
package apierror

import (
	"context"
	"errors"
	"fmt"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Error is an API error. Code is a six-digit string; Status is Code/1000.
type Error struct {
	Code    string `json:"errorCode"`
	Message string `json:"errorMessage"`
	Detail  string `json:"detail,omitempty"`
}

// Error implements error.
func (e *Error) Error() string {
	if e.Detail == "" {
		return e.Code + " " + e.Message
	}
	return e.Code + " " + e.Message + ": " + e.Detail
}

// Status is the HTTP status of the error: the code's first three digits.
func (e *Error) Status() int {
	s := 0
	for _, c := range e.Code[:3] {
		s = s*10 + int(c-'0')
	}
	return s
}

// WithDetail returns a copy of e carrying detail.
func (e *Error) WithDetail(detail string) *Error {
	c := *e
	c.Detail = detail
	return &c
}

// Detailf returns a copy of e with a formatted detail.
func (e *Error) Detailf(format string, args ...any) *Error {
	return e.WithDetail(fmt.Sprintf(format, args...))
}

// Is makes errors.Is match on the code alone, so a detailed copy matches its
// template.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// As extracts an *Error from err, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

func def(code, msg string) *Error { return &Error{Code: code, Message: msg} }

// The error table of the API (SPEC §2). Use WithDetail/Detailf to add a
// cause; never modify these values.
var (
	InvalidParams         = def("400001", "Invalid parameter(s)")
	AccountNotExist       = def("400200", "Account not exists")
	RoleNotExist          = def("400201", "Role not exists")
	AccountHasInvalidRole = def("400202", "Account has invalid role(s)")
	AccountNoQuota        = def("400203", "No quota to create account")
	RoleNoQuota           = def("400204", "No quota to create role")
	RoleIsBound           = def("400205", "Role is bound to some user(s)")
	NewPasswordBad        = def("400206", "New password is bad")
	Unauthorized          = def("401201", "Request unauthorized")
	WrongCredentials      = def("401202", "User name or password is wrong")
	NoAuthHeader          = def("401204", "No authorization header")
	TokenExpired          = def("401205", "Token is expired")
	TokenOwnerDeleted     = def("401206", "The account that owns the token is deleted")
	WrongPassword         = def("401207", "Password is wrong")
	Forbidden             = def("403001", "Forbidden")
	AccountBlocked        = def("403201", "Account blocked")
	BuiltInAccount        = def("403202", "Forbid to operate build-in account(s)")
	BuiltInRole           = def("403203", "Forbid to operate build-in role(s)")
	OwnAccount            = def("403204", "Forbid to operate your own account")
	NoPermission          = def("403205", "No permission(s)")
	AccountInactive       = def("403206", "Account is inactive")
	NotFound              = def("404001", "Not found")
	MethodNotAllowed      = def("405001", "Method not allowed")
	AccountDuplicated     = def("409200", "account name is duplicated")
	RoleDuplicated        = def("409201", "role name is duplicated")
	TooLarge              = def("413001", "Request entity too large")
	TooManyRequests       = def("429001", "Too many requests")
	InvalidAppCredentials = def("401501", "Invalid app key or secret")
	AccessTokenInvalid    = def("401502", "Access token is invalid")
	AccessTokenExpired    = def("401503", "Access token is expired")
	AppKeyMismatch        = def("401504", "App key does not match the access token")
	Internal              = def("500003", "Internal server error")
	BadGateway            = def("502001", "Bad gateway")     // gateway mode: upstream unreachable or broken
	GatewayTimeout        = def("504001", "Gateway timeout") // gateway mode: upstream too slow
	StoreUnavailable      = def("503001", "Store unavailable")
)

// FromStore maps a store failure to the API's error: API errors pass
// through, an unreachable or closed store (or a change feed that did not
// catch up in time) is StoreUnavailable, anything else stays an internal
// error.
func FromStore(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := As(err); ok {
		return err
	}
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrClosed) || errors.Is(err, store.ErrStopped) ||
		errors.Is(err, context.DeadlineExceeded) {
		return StoreUnavailable
	}
	return fmt.Errorf("store: %w", err)
}
