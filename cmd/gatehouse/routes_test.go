package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGatewayRoutes(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gatehouse.yaml")
	yaml := `listen: 127.0.0.1:0
routes:
  - prefix: /v4/
    upstream: http://127.0.0.1:30110
    timeout: 5s
  - prefix: /reports/
    upstream: http://127.0.0.1:8080
    resource: ops
    verb: get
    strip-authorization: true
    strip-prefix: true
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := newServeCmd()
	if err := applyEnvAndFile(cmd.Flags(), file); err != nil {
		t.Fatalf("the routes section was not accepted: %v", err)
	}
	routes, err := gatewayRoutes(file, []string{"/v4/=http://10.0.0.1:30110", "/apiaccess/ccmessaging/=http://10.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) != 3 {
		t.Fatalf("routes %+v", routes)
	}
	v4, reports, ccm := routes[0], routes[1], routes[2]
	if v4.Upstream != "http://10.0.0.1:30110" || v4.Timeout != 0 {
		t.Errorf("a flag did not replace the file's route: %+v", v4)
	}
	if reports.Resource != "ops" || reports.Verb != "get" || reports.StripAuthorization == nil || !*reports.StripAuthorization || !reports.StripPrefix {
		t.Errorf("file route: %+v", reports)
	}
	if ccm.Prefix != "/apiaccess/ccmessaging/" {
		t.Errorf("flag route: %+v", ccm)
	}

	fileOnly, err := gatewayRoutes(file, nil)
	if err != nil || len(fileOnly) != 2 || fileOnly[0].Timeout != 5*time.Second {
		t.Fatalf("file routes: %+v %v", fileOnly, err)
	}

	for _, bad := range []string{
		"routes:\n  - prefix: /v4/\n    upstrem: http://x\n",
		"routes:\n  - prefix: /v4/\n    upstream: http://x\n    timeout: soon\n",
	} {
		if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := gatewayRoutes(file, nil); err == nil || !strings.Contains(err.Error(), "routes") {
			t.Errorf("%q: want an error naming routes, got %v", bad, err)
		}
	}
	if _, err := gatewayRoutes("", []string{"/v4/"}); err == nil {
		t.Error("a malformed --upstream was accepted")
	}
}
