package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/servertest"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, returning
// their paths and a pool trusting the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cert := servertest.WriteCert(t, certFile, keyFile, 1)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestServeTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.RootPassword = "127.0.0.1:0", t.TempDir(), "Root-Passw0rd!"
	cfg.TLSCert, cfg.TLSKey = certFile, keyFile
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + srv.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("healthz over TLS: %d %q", resp.StatusCode, body)
	}
	// Plain HTTP on the TLS port is not served.
	if resp, err := http.Get("http://" + srv.Addr() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP answered on the TLS listener")
		}
	}
}

func TestStartRefusesBadTLSFiles(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.RootPassword = "127.0.0.1:0", t.TempDir(), "Root-Passw0rd!"
	cfg.TLSCert, cfg.TLSKey = filepath.Join(t.TempDir(), "missing.pem"), filepath.Join(t.TempDir(), "missing.key")
	cfg.Logger = slog.New(slog.DiscardHandler)
	if srv, err := server.Start(context.Background(), cfg); err == nil {
		srv.Shutdown(context.Background())
		t.Fatal("started with missing TLS files")
	}
}
