package gateway_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpapi/gateway"
	"github.com/gatehouse/gatehouse/internal/server"
)

// nginxBinary finds nginx on PATH or at Debian's path; empty if absent.
func nginxBinary() string {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	return ""
}

// freeAddr returns a 127.0.0.1 address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startNginx runs nginx in the foreground with examples/nginx/gatehouse.conf
// filled in, in its own prefix directory, and returns its base URL.
func startNginx(t *testing.T, bin, gatehouseAddr, upstreamAddr string) string {
	t.Helper()
	dir := t.TempDir()
	tmpl, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", "nginx", "gatehouse.conf"))
	if err != nil {
		t.Fatal(err)
	}
	listen := freeAddr(t)
	site := strings.NewReplacer("${LISTEN}", listen, "${GATEHOUSE}", gatehouseAddr, "${UPSTREAM}", upstreamAddr).Replace(string(tmpl))
	if strings.Contains(site, "${") {
		t.Fatal("the template has a placeholder the test does not fill")
	}
	built, _ := exec.Command(bin, "-V").CombinedOutput()
	temps := []string{"client_body", "proxy"}
	for _, m := range []string{"fastcgi", "uwsgi", "scgi"} {
		if !strings.Contains(string(built), "--without-http_"+m+"_module") {
			temps = append(temps, m)
		}
	}
	var paths strings.Builder
	for _, m := range temps {
		fmt.Fprintf(&paths, "    %s_temp_path %s;\n", m, filepath.Join(dir, m))
	}
	main := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
%[2]s    include %[1]s/gatehouse.conf;
}
`, dir, paths.String())
	for name, body := range map[string]string{"gatehouse.conf": site, "nginx.conf": main} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", filepath.Join(dir, "nginx.conf"))
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx output:\n%s\nerror.log:\n%s", out, log)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited:\n%s\n%s", out, log)
		default:
		}
		if c, err := net.Dial("tcp", listen); err == nil {
			c.Close()
			return "http://" + listen
		}
		if time.Now().After(deadline) {
			t.Fatal("nginx did not listen within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNginxAuthRequest runs a real nginx with the shipped configuration in
// front of an upstream, with Gatehouse's /auth/verify deciding, and checks
// allowed, denied and renewed requests end to end.
func TestNginxAuthRequest(t *testing.T) {
	t.Parallel()
	bin := nginxBinary()
	if bin == "" {
		t.Skip("nginx is not installed")
	}
	up := newEcho(t)
	// A route's rules decide /auth/verify as they decide gateway mode.
	g := start(t, func(c *server.Config) {
		c.CCMessagingTokenTTL = time.Second
		c.TrustedProxies = []string{"127.0.0.1"}
	}, gateway.Route{Prefix: "/reports/", Upstream: up.URL, Resource: "ops", Verb: "get"})
	root := g.root()
	reader := g.user(root, "reader", perm(get, "service"))
	opsReader := g.user(root, "opsReader", perm(get, "ops"))
	s := g.openSession(root, "frank")
	renewing := g.openSession(root, "grace")
	expiredAt := time.Now()
	nginx := startNginx(t, bin, strings.TrimPrefix(g.base, "http://"), strings.TrimPrefix(up.URL, "http://"))

	const path = "/v4/default/registry/microservices"
	t.Run("engine allowed", func(t *testing.T) {
		r := send(t, "GET", nginx+path+"?x=1", reader, nil, "X-Gatehouse-Account", "root", "X-Gatehouse-User-Id", "mallory")
		proxied(t, r, path)
		h := up.last(t).Header
		if h.Get("X-Gatehouse-Account") != "reader" || h.Get("X-Gatehouse-Roles") != "reader" || h.Get("X-Gatehouse-User-Id") != "" {
			t.Fatalf("identity headers at the upstream: %v", h)
		}
		if h.Get("Authorization") != "Bearer "+reader {
			t.Fatal("Authorization was not kept for an engine API")
		}
	})
	t.Run("engine denied", func(t *testing.T) {
		before := up.count()
		e := wantErr(t, send(t, "POST", nginx+path, reader, `{"service":{}}`), 403, "403205")
		if e.Detail != "role has no permissions[service:create]" {
			t.Fatalf("detail %q", e.Detail)
		}
		wantErr(t, send(t, "GET", nginx+path, "", nil), 401, "401204")
		if up.count() != before {
			t.Fatal("a refused request reached the upstream")
		}
	})
	t.Run("route rules", func(t *testing.T) {
		proxied(t, send(t, "POST", nginx+"/reports/daily", opsReader, `{}`), "/reports/daily")
		before := up.count()
		wantErr(t, send(t, "GET", nginx+"/reports/daily", reader, nil), 403, "403205")
		if up.count() != before {
			t.Fatal("a refused request reached the upstream")
		}
	})
	t.Run("login through nginx", func(t *testing.T) {
		r := send(t, "POST", nginx+"/v4/token", "", map[string]string{"name": "root", "password": rootPW})
		if r.status != 200 || !strings.Contains(string(r.body), `"token"`) {
			t.Fatalf("login: %d %s", r.status, r.body)
		}
	})
	t.Run("ccmessaging allowed", func(t *testing.T) {
		r := send(t, "POST", nginx+ccmPrefix+"chat", "", `{"text":"hi"}`, s.headers()...)
		proxied(t, r, ccmPrefix+"chat")
		h := up.last(t).Header
		if h.Get("X-Gatehouse-User-Id") != "frank" || h.Get("X-Gatehouse-Channel-Id") != s.channelID || h.Get("X-Gatehouse-App-Key") != s.appKey {
			t.Fatalf("identity headers at the upstream: %v", h)
		}
		for _, k := range []string{"Authorization", "X-App-Key", "Ccmessaging-Token"} {
			if h.Get(k) != "" {
				t.Errorf("the credential %s reached the upstream", k)
			}
		}
	})
	t.Run("ccmessaging denied", func(t *testing.T) {
		wantResult(t, send(t, "GET", nginx+ccmPrefix+"chat", "", nil, "x-app-key", s.appKey), 401)
	})
	t.Run("ccmessaging renewed", func(t *testing.T) {
		time.Sleep(time.Until(expiredAt.Add(2100 * time.Millisecond)))
		r := send(t, "GET", nginx+ccmPrefix+"chat", "", nil, renewing.headers()...)
		proxied(t, r, ccmPrefix+"chat")
		renewed := r.header.Get("ccmessaging-token")
		if renewed == "" || renewed == renewing.token {
			t.Fatalf("no renewed token: %v", r.header)
		}
		renewing.token = renewed
		r = send(t, "GET", nginx+ccmPrefix+"chat", "", nil, renewing.headers()...)
		proxied(t, r, ccmPrefix+"chat")
		if r.header.Get("ccmessaging-token") != "" {
			t.Fatal("the renewed token was renewed again")
		}
	})
}
