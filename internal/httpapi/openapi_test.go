package httpapi_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/gatehouse/gatehouse/internal/apifabric"
	"github.com/gatehouse/gatehouse/internal/ccmessaging"
	"github.com/gatehouse/gatehouse/internal/httpapi"
	"github.com/gatehouse/gatehouse/internal/httpapi/console"
	"github.com/gatehouse/gatehouse/internal/httpapi/gateway"
	"github.com/gatehouse/gatehouse/internal/servertest"
)

// TestMain checks every answer the tests of this package receive through
// servertest against the OpenAPI document (see contract.check).
func TestMain(m *testing.M) {
	c, err := loadContract()
	if err != nil {
		fmt.Fprintln(os.Stderr, "openapi.json:", err)
		os.Exit(1)
	}
	servertest.Check = c.check
	code := m.Run()
	if code == 0 && flag.Lookup("test.run").Value.String() == "" {
		// The whole suite ran: it must have exercised every operation.
		if missed := c.unexercised(); len(missed) > 0 {
			fmt.Fprintf(os.Stderr, "no test answer checked these operations of openapi.json: %s\n", strings.Join(missed, ", "))
			code = 1
		}
	}
	os.Exit(code)
}

// contract is the OpenAPI document with a router from requests to its
// operations.
type contract struct {
	doc *openapi3.T
	// routes maps the server's registered routes to their operation;
	// operation finds a request's.
	routes *http.ServeMux

	mu        sync.Mutex
	exercised map[string]bool // "METHOD /path" of the operations checked
}

// unexercised returns the operations no answer was checked against.
func (c *contract) unexercised() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, op := range c.documented() {
		if !c.exercised[op] {
			out = append(out, op)
		}
	}
	return out
}

// registeredRoutes returns the routes of an HTTP surface with every
// optional part present, the console included. Registering routes calls
// no domain service, so zero services do.
func registeredRoutes() []string {
	return httpapi.New(httpapi.Deps{Fabric: new(apifabric.Service), Messaging: new(ccmessaging.Service)},
		httpapi.Options{Gateway: new(gateway.Gateway), ConsoleSecret: make([]byte, 32)}).Routes()
}

var (
	wildcard     = regexp.MustCompile(`\{([A-Za-z0-9_]+)(\.\.\.)?\}`)
	methodPrefix = regexp.MustCompile(`^([A-Z]+) `)
)

// docOperation translates a registered route to the document's "METHOD
// /path" ({name...} is {name}); a route for every method ("/path") is
// "* /path".
func docOperation(route string) string {
	method := "*"
	if m := methodPrefix.FindStringSubmatch(route); m != nil {
		method, route = m[1], strings.TrimPrefix(route, m[0])
	}
	return method + " " + wildcard.ReplaceAllString(route, "{$1}")
}

// documented returns the document's operations as "METHOD /path".
func (c *contract) documented() []string {
	var ops []string
	for path, item := range c.doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" "+path)
		}
	}
	slices.Sort(ops)
	return ops
}

func loadContract() (*contract, error) {
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		return nil, err
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("not a valid OpenAPI document: %w", err)
	}
	c := &contract{doc: doc, routes: http.NewServeMux(), exercised: map[string]bool{}}
	for _, route := range registeredRoutes() {
		op := docOperation(route)
		c.routes.HandleFunc(route, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Operation", op)
		})
	}
	return c, nil
}

// operation returns the document's operation for req, nil for a request
// no route takes (an unknown path, an upstream's, a dispatcher's).
func (c *contract) operation(req *http.Request) *routers.Route {
	probe := &headerProbe{header: http.Header{}}
	c.routes.ServeHTTP(probe, req)
	op := probe.header.Get("Operation")
	if op == "" {
		return nil
	}
	method, path, _ := strings.Cut(op, " ")
	item := c.doc.Paths.Value(path)
	if item == nil {
		return nil
	}
	if method == "*" { // a route for every method: documented as GET
		method = http.MethodGet
	}
	o := item.GetOperation(method)
	if o == nil {
		return nil
	}
	return &routers.Route{Spec: c.doc, Path: path, PathItem: item, Method: method, Operation: o}
}

// check validates an answer against the document: its status must be
// documented for its operation, its body must match the schema of that
// status (and be empty where the document shows no content), its headers
// must match. Requests outside the document's operations, and answers of
// an operation whose method the route refused, are not checked here.
func (c *contract) check(req *http.Request, r servertest.Reply) error {
	route := c.operation(req)
	if route == nil || r.Status == http.StatusMethodNotAllowed && !strings.EqualFold(req.Method, route.Method) {
		return nil
	}
	c.mu.Lock()
	c.exercised[route.Method+" "+route.Path] = true
	c.mu.Unlock()
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, Route: route, Options: opts},
		Status:                 r.Status, Header: r.Header, Options: opts,
	}
	in.SetBodyBytes(r.Body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return fmt.Errorf("against %s %s of openapi.json: %w", route.Method, route.Path, err)
	}
	resp := route.Operation.Responses.Status(r.Status)
	if resp == nil {
		resp = route.Operation.Responses.Default()
	}
	if resp != nil && resp.Value != nil && len(resp.Value.Content) == 0 && len(r.Body) != 0 {
		return fmt.Errorf("against %s %s of openapi.json: a body where the document shows none", route.Method, route.Path)
	}
	return nil
}

// headerProbe captures the headers a handler sets.
type headerProbe struct{ header http.Header }

func (p *headerProbe) Header() http.Header         { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *headerProbe) WriteHeader(int)             {}

// TestOpenAPIRoutes: the document describes exactly the registered
// routes. A mismatch names the route, so that whoever adds, moves or
// removes one updates internal/httpapi/openapi.json.
func TestOpenAPIRoutes(t *testing.T) {
	c, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	documented := c.documented()
	var registered []string
	for _, route := range registeredRoutes() {
		op := docOperation(route)
		registered = append(registered, op)
		if method, path, _ := strings.Cut(op, " "); method == "*" {
			if c.doc.Paths.Value(path) == nil {
				t.Errorf("route %q is registered but %s is not in internal/httpapi/openapi.json", route, path)
			}
			continue
		}
		if !slices.Contains(documented, op) {
			t.Errorf("route %q is registered but %s is not in internal/httpapi/openapi.json", route, op)
		}
	}
	for _, op := range documented {
		method, path, _ := strings.Cut(op, " ")
		if !slices.Contains(registered, op) && !slices.Contains(registered, "* "+path) {
			t.Errorf("internal/httpapi/openapi.json documents %s %s, which no route serves", method, path)
		}
	}
}

// TestOpenAPILeavesOutTheConsole: the one rule for the admin console is
// that its HTML pages are not the API: the console is served (below) but
// registers no route, and the document has no path under it.
func TestOpenAPILeavesOutTheConsole(t *testing.T) {
	c, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	for _, route := range registeredRoutes() {
		if _, path, _ := strings.Cut(docOperation(route), " "); strings.HasPrefix(path, console.Prefix) {
			t.Errorf("route %q is under the console, which serves pages, not the API", route)
		}
	}
	for _, op := range c.documented() {
		if _, path, _ := strings.Cut(op, " "); strings.HasPrefix(path, console.Prefix) {
			t.Errorf("internal/httpapi/openapi.json documents %s, a page of the console", op)
		}
	}
	r := start(t, nil).call("GET", console.Prefix+"login", "", nil)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET %slogin: %d %s", console.Prefix, r.status, r.header.Get("Content-Type"))
	}
}

// TestOpenAPIServed: GET /openapi.json needs no token and answers the
// document kept in the repository.
func TestOpenAPIServed(t *testing.T) {
	ts := start(t, nil)
	r := ts.call("GET", "/openapi.json", "", nil)
	want, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if r.status != http.StatusOK || !bytes.Equal(r.body, want) || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json: %d %q, %d bytes", r.status, r.header.Get("Content-Type"), len(r.body))
	}
	if _, err := openapi3.NewLoader().LoadFromData(r.body); err != nil {
		t.Fatal(err)
	}
}

// TestOpenAPIContractRejects: the check fails an answer that departs from
// the document, so a passing suite means the answers conform.
func TestOpenAPIContractRejects(t *testing.T) {
	c, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	req := func(method, path string) *http.Request {
		r, _ := http.NewRequest(method, "http://127.0.0.1"+path, nil)
		return r
	}
	jsonHdr := http.Header{"Content-Type": {"application/json"}}
	for _, tc := range []struct {
		name string
		req  *http.Request
		r    servertest.Reply
	}{
		{"a field of the wrong type", req("GET", "/v4/accounts/a"), servertest.Reply{Status: 200, Header: jsonHdr,
			Body: []byte(`{"id":"1","name":"a","roles":["admin"],"status":"active","createTime":1,"updateTime":"1"}`)}},
		{"an undocumented status", req("POST", "/v4/token"), servertest.Reply{Status: 404, Header: http.Header{"Content-Type": {"text/plain"}}, Body: []byte("no")}},
		{"the wrong error model", req("POST", "/apiaccess/ccmessaging/applyToken"), servertest.Reply{Status: 401, Header: jsonHdr,
			Body: []byte(`{"errorCode":"401501","errorMessage":"Invalid app key or secret"}`)}},
		{"an unknown error code", req("GET", "/v4/roles"), servertest.Reply{Status: 401, Header: jsonHdr,
			Body: []byte(`{"errorCode":"401999","errorMessage":"x"}`)}},
		{"a body for an empty answer", req("DELETE", "/v4/roles/r"), servertest.Reply{Status: 200, Header: jsonHdr, Body: []byte(`{}`)}},
		{"a wildcard route", req("DELETE", "/v4/ccmessaging-sessions/1/a/b"), servertest.Reply{Status: 200, Header: jsonHdr, Body: []byte(`{}`)}},
	} {
		if err := c.check(tc.req, tc.r); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	ok := servertest.Reply{Status: 200, Header: jsonHdr, Body: []byte(`{"token":"x"}`)}
	if err := c.check(req("POST", "/v4/token"), ok); err != nil {
		t.Errorf("a conforming answer: %v", err)
	}
}

// TestOpenAPIAuthVerify exercises /auth/verify, whose behaviour the
// gateway's tests cover, so that the suite checks its answers too.
func TestOpenAPIAuthVerify(t *testing.T) {
	ts := start(t, nil)
	root := ts.root()
	if r := ts.call("GET", "/auth/verify", root, nil, "X-Original-URI", "/v4/accounts"); r.status != http.StatusOK {
		t.Fatalf("allowed: %d %s", r.status, r.body)
	}
	wantCode(t, ts.call("GET", "/auth/verify", "", nil, "X-Original-URI", "/v4/accounts"), 401, "401204")
	wantCode(t, ts.call("GET", "/auth/verify", root, nil), 400, "400001")
}
