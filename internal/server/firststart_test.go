package server_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpapi/gateway"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/servertest"
)

// rootLogin asks srv for a token of root with pw and returns the status.
func rootLogin(t *testing.T, srv *server.Server, pw string) int {
	t.Helper()
	return servertest.Send(t, "POST", "http://"+srv.Addr()+"/v4/token", "",
		map[string]string{"name": "root", "password": pw}).Status
}

// A start that fails on its configuration or on the host creates no root:
// the next start, with a root password, creates root with that one.
func TestFailedStartCreatesNoRoot(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cases := map[string]func(*server.Config){
		"port in use":      func(c *server.Config) { c.Listen = busy.Addr().String() },
		"missing TLS file": func(c *server.Config) { c.TLSCert, c.TLSKey = "/nonexistent/cert.pem", "/nonexistent/key.pem" },
		"route twice": func(c *server.Config) {
			r := gateway.Route{Prefix: "/api/", Upstream: "http://127.0.0.1:1"}
			c.Routes = []gateway.Route{r, r}
		},
		"ccmessaging TTL": func(c *server.Config) { c.CCMessagingTokenTTL = time.Millisecond },
	}
	for name, breakIt := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := server.DefaultConfig()
			cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
			cfg.Logger = slog.New(slog.DiscardHandler)
			bad := cfg
			breakIt(&bad)
			if srv, err := server.Start(context.Background(), bad); err == nil {
				srv.Shutdown(context.Background())
				t.Fatal("started")
			}
			if _, err := os.Stat(server.RootPasswordFile(cfg)); !os.IsNotExist(err) {
				t.Fatalf("a failed start left a root password file: %v", err)
			}
			cfg.RootPassword = "Root-Passw0rd!"
			srv, err := server.Start(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Shutdown(context.Background())
			if st := rootLogin(t, srv, cfg.RootPassword); st != 200 {
				t.Fatalf("root of the failed start kept: login with the new root password gave %d", st)
			}
		})
	}
}

// A generated root password is kept in a file only its owner reads, until
// root changes its password.
func TestGeneratedRootPasswordFile(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := server.RootPasswordFile(cfg)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	pw := strings.TrimSuffix(string(b), "\n")
	base := "http://" + srv.Addr()
	r := servertest.Send(t, "POST", base+"/v4/token", "", map[string]string{"name": "root", "password": pw})
	if r.Status != 200 {
		t.Fatalf("the file's password: %d", r.Status)
	}
	var tok struct{ Token string }
	r.JSON(t, &tok)
	if r := servertest.Send(t, "POST", base+"/v4/accounts/root/password", tok.Token,
		map[string]string{"currentPassword": pw, "password": "Root-Passw1rd!"}); r.Status != 200 {
		t.Fatalf("change: %d %s", r.Status, r.Body)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the file outlived the change: %v", err)
	}
	srv.Shutdown(context.Background())

	// A file whose password is no longer root's (changed through another
	// replica, or by reset-root) goes at the next start; a current one
	// stays.
	if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err = server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.Shutdown(context.Background())
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a stale file survived a start: %v", err)
	}
	if err := os.WriteFile(path, []byte("Root-Passw1rd!\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err = server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.Shutdown(context.Background())
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("a current file was deleted: %v", err)
	}
}
