package httpapi_test

import (
	"runtime"
	"testing"

	"github.com/gatehouse/gatehouse/internal/server"
)

// GET /version answers Service Center's version set without a token.
func TestVersion(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *server.Config) { c.Version = "1.2.3" })
	r := ts.call("GET", "/version", "", nil)
	wantStatus(t, r, 200)
	var v map[string]string
	r.json(t, &v)
	if v["version"] != "1.2.3" || v["apiVersion"] != "3.0.0" || v["goVersion"] != runtime.Version() ||
		v["os"] != runtime.GOOS || v["arch"] != runtime.GOARCH || v["buildTag"] == "" || len(v) != 6 {
		t.Fatalf("version %s", r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
}
