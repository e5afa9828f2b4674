package httpapi_test

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/servertest"
)

func TestAdminListener(t *testing.T) {
	ts := start(t, func(c *server.Config) { c.AdminListen = "127.0.0.1:0" })
	admin := ts.Admin()
	if admin == "" || admin == ts.Base {
		t.Fatalf("admin listener %q, public %q", admin, ts.Base)
	}
	ts.call("GET", "/healthz", "", nil)
	m := servertest.SendOutside(t, "GET", admin+"/metrics", "", nil)
	if m.Status != 200 || !strings.Contains(string(m.Body), "gatehouse_http_requests_total") {
		t.Fatalf("admin /metrics: %d %.200s", m.Status, m.Body)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := servertest.SendOutside(t, "GET", admin+p, "", nil); r.Status != 200 || string(r.Body) != "ok" {
			t.Fatalf("admin %s: %d %q", p, r.Status, r.Body)
		}
		if r := ts.call("GET", p, "", nil); r.status != 200 {
			t.Fatalf("public %s: %d", p, r.status)
		}
	}
	// /metrics has left the public listener; profiles need --pprof.
	wantErr(t, ts.call("GET", "/metrics", "", nil), 404, "404001", "Not found")
	if r := servertest.SendOutside(t, "GET", admin+"/debug/pprof/", "", nil); r.Status != 404 {
		t.Fatalf("pprof without --pprof: %d", r.Status)
	}
	// The admin listener serves nothing else.
	if r := servertest.SendOutside(t, "POST", admin+"/v4/token", "", map[string]string{"name": "root", "password": rootPW}); r.Status != 404 && r.Status != 405 {
		t.Fatalf("admin listener serves the API: %d", r.Status)
	}
}

func TestAdminPprof(t *testing.T) {
	ts := start(t, func(c *server.Config) { c.AdminListen, c.Pprof = "127.0.0.1:0", true })
	r := servertest.SendOutside(t, "GET", ts.Admin()+"/debug/pprof/goroutine?debug=1", "", nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), "goroutine profile") {
		t.Fatalf("pprof: %d %.200s", r.Status, r.Body)
	}
	if r := ts.call("GET", "/debug/pprof/", "", nil); r.status != 404 {
		t.Fatalf("pprof on the public listener: %d", r.status)
	}
}

func TestPprofNeedsAdminListener(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.RootPassword, cfg.Pprof = "127.0.0.1:0", t.TempDir(), rootPW, true
	if srv, err := server.Start(t.Context(), cfg); err == nil {
		_ = srv.Shutdown(t.Context())
		t.Fatal("--pprof without --admin-listen started")
	}
}
