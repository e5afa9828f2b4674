package server_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/servertest"
)

// TestTLSCertificateReload replaces the certificate files of a running
// server: new connections get the new certificate, a connection opened
// before keeps working.
func TestTLSCertificateReload(t *testing.T) {
	certFile, keyFile, _ := selfSigned(t)
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.RootPassword = "127.0.0.1:0", t.TempDir(), "Root-Passw0rd!"
	cfg.TLSCert, cfg.TLSKey = certFile, keyFile
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	url := "https://" + srv.Addr() + "/healthz"

	// The serial of the certificate a new connection gets.
	serial := func() int64 {
		t.Helper()
		c, err := tls.Dial("tcp", srv.Addr(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	// A keep-alive client; get reports whether its connection was reused.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	get := func() (reused bool) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
		}))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("healthz: %d", resp.StatusCode)
		}
		return reused
	}

	if s := serial(); s != 1 {
		t.Fatalf("serial %d, want 1", s)
	}
	get()
	servertest.WriteCert(t, certFile, keyFile, 2)
	deadline := time.Now().Add(10 * time.Second)
	for serial() != 2 {
		if time.Now().After(deadline) {
			t.Fatal("the replaced certificate was not picked up")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !get() {
		t.Fatal("the connection opened before the reload was not reused")
	}

	// A broken pair leaves the current certificate in use.
	servertest.WriteCert(t, certFile, t.TempDir()+"/other-key.pem", 3) // certificate without its key
	time.Sleep(1100 * time.Millisecond)                                // past the check interval
	if s := serial(); s != 2 {
		t.Fatalf("serial %d after a mismatched pair, want 2", s)
	}
}
