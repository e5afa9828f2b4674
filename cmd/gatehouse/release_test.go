package main

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gatehouse/gatehouse/internal/httpapi/gateway"
)

// TestReleaseBuild runs the Dockerfile's build (deploy/build.sh) and
// checks that the binary is static, stamped, and can probe a server
// for HEALTHCHECK.
func TestReleaseBuild(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	bin := filepath.Join(t.TempDir(), "gatehouse")
	build := exec.Command("sh", "../../deploy/build.sh")
	build.Env = append(os.Environ(), "VERSION=9.8.7-test", "COMMIT=0123abcd", "OUT="+bin)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary has a %v program header: not static", p.Type)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("binary needs shared libraries %v (%v)", libs, err)
	}

	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "gatehouse 9.8.7-test (commit 0123abcd, " + runtime.Version() + ")\n"; string(out) != want {
		t.Fatalf("version: %q, want %q", out, want)
	}

	var status atomic.Int32
	status.Store(http.StatusOK)
	probe := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(int(status.Load())) }))
	defer probe.Close()
	if out, err := exec.Command(bin, "healthcheck", "--url", probe.URL+"/readyz").CombinedOutput(); err != nil {
		t.Fatalf("healthcheck of a ready server: %v %s", err, out)
	}
	status.Store(http.StatusServiceUnavailable)
	if err := exec.Command(bin, "healthcheck", "--url", probe.URL+"/readyz").Run(); err == nil {
		t.Fatal("healthcheck of an unready server succeeded")
	}
	probe.Close()

	// https, verified with --cacert.
	tlsProbe := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer tlsProbe.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsProbe.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "healthcheck", "--url", tlsProbe.URL, "--cacert", ca).CombinedOutput(); err != nil {
		t.Fatalf("healthcheck over https with --cacert: %v %s", err, out)
	}
	if err := exec.Command(bin, "healthcheck", "--url", tlsProbe.URL).Run(); err == nil {
		t.Fatal("healthcheck trusted an unknown certificate")
	}

	if err := exec.Command(bin, "healthcheck", "--url", probe.URL+"/readyz").Run(); err == nil {
		t.Fatal("healthcheck of a stopped server succeeded")
	}
}

func TestVersionCommand(t *testing.T) {
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"version"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^gatehouse dev \(commit \S+, ` + regexp.QuoteMeta(runtime.Version()) + `\)\n$`)
	if !re.MatchString(out.String()) {
		t.Fatalf("version: %q", out.String())
	}
}

// TestExampleConfig loads deploy/gatehouse.example.yaml with the serve
// command's own loader, and checks that it mentions every serve flag.
func TestExampleConfig(t *testing.T) {
	const file = "../../deploy/gatehouse.example.yaml"
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var routes []gateway.Route
	cmd := newServeCmd()
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := applyEnvAndFile(cmd.Flags(), file); err != nil {
			return err
		}
		if _, err := newLogger(&bytes.Buffer{}, cmd.Flags().Lookup("log-level").Value.String(), cmd.Flags().Lookup("log-format").Value.String()); err != nil {
			return err
		}
		routes, err = gatewayRoutes(file, nil)
		return err
	}
	cmd.SetArgs([]string{"--config", file})
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("example config: %v", err)
	}
	if got := cmd.Flags().Lookup("admin-listen").Value.String(); got != "127.0.0.1:30101" {
		t.Errorf("admin-listen = %q", got)
	}
	if len(routes) != 1 || routes[0].Prefix != "/v4/" {
		t.Errorf("routes = %+v", routes)
	}
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Name == "config" || f.Name == "upstream" || f.Name == "help" {
			return
		}
		if !regexp.MustCompile(`(?m)^(# )?` + regexp.QuoteMeta(f.Name) + `:`).Match(text) {
			t.Errorf("the example config does not mention %s", f.Name)
		}
	})
	if strings.Contains(string(text), "password:") {
		t.Error("the example config holds a password")
	}
}
