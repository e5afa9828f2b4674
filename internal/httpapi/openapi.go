package httpapi

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3.1 document of every route (Server.Routes): the
// API contract, kept in the repository and checked against the routes and
// the answers by the tests.
//
//go:embed openapi.json
var openAPI []byte

// serveOpenAPI answers GET /openapi.json; it needs no token.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openAPI)
}
