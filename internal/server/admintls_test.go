package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/server"
)

// clientCA returns the PEM file of a new CA and a client certificate it
// signed.
func clientCA(t *testing.T) (caFile string, client tls.Certificate) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, clientKey := newKey(), newKey()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(10), Subject: pkix.Name{CommonName: "admin clients CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ = x509.ParseCertificate(caDER)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(11), Subject: pkix.Name{CommonName: "prometheus"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &clientKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return caFile, tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: clientKey}
}

func TestAdminMutualTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	caFile, clientCert := clientCA(t)
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.RootPassword = "127.0.0.1:0", t.TempDir(), "Root-Passw0rd!"
	cfg.TLSCert, cfg.TLSKey, cfg.TLSClientCA, cfg.AdminListen = certFile, keyFile, caFile, "127.0.0.1:0"
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	url := "https://" + srv.AdminAddr() + "/metrics"

	get := func(certs ...tls.Certificate) (*http.Response, error) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}}}
		return c.Get(url)
	}
	resp, err := get(clientCert)
	if err != nil {
		t.Fatalf("admin with a client certificate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("admin /metrics: %d", resp.StatusCode)
	}
	if resp, err := get(); err == nil {
		resp.Body.Close()
		t.Fatalf("admin answered %d without a client certificate", resp.StatusCode)
	}
	// A certificate from another CA is refused too.
	other, _ := tls.LoadX509KeyPair(certFile, keyFile)
	if resp, err := get(other); err == nil {
		resp.Body.Close()
		t.Fatalf("admin answered %d to a certificate of another CA", resp.StatusCode)
	}
	// The public listener asks for no client certificate.
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if resp, err := c.Get("https://" + srv.Addr() + "/healthz"); err != nil {
		t.Fatalf("public listener: %v", err)
	} else {
		resp.Body.Close()
	}
}

func TestClientCANeedsAdminListener(t *testing.T) {
	caFile, _ := clientCA(t)
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.RootPassword, cfg.TLSClientCA = "127.0.0.1:0", t.TempDir(), "Root-Passw0rd!", caFile
	cfg.Logger = slog.New(slog.DiscardHandler)
	if srv, err := server.Start(context.Background(), cfg); err == nil {
		_ = srv.Shutdown(context.Background())
		t.Fatal("--tls-client-ca without --admin-listen started")
	}
}
