package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse/gatehouse/internal/scimport/scfixture"
)

// gatehouse import sc fills a data directory from a Service Center dump;
// a second run changes nothing; serve on that directory accepts tokens
// Service Center signed (no kid, no iat, no jti).
func TestImportSCThenServe(t *testing.T) {
	bin := binary(t)
	fx := scfixture.Dir(t)
	data := t.TempDir()
	args := []string{"import", "sc", "--from-dump", filepath.Join(fx, "etcd.json"),
		"--sc-private-key", filepath.Join(fx, "private.pem"), "--data", data}
	importSC := func(extra ...string) string {
		t.Helper()
		out, err := exec.Command(bin, append(args, extra...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("import: %v\n%s", err, out)
		}
		for _, secret := range []string{"1024$8$1$", "PRIVATE KEY", "Pass-2026"} {
			if strings.Contains(string(out), secret) {
				t.Fatalf("import output shows %q:\n%s", secret, out)
			}
		}
		return string(out)
	}
	if out := importSC("--dry-run"); !strings.Contains(out, "dry run") || !strings.Contains(out, "accounts: 5 created") {
		t.Fatalf("dry run:\n%s", out)
	}
	if out := importSC(); !strings.Contains(out, "accounts: 5 created") || !strings.Contains(out, "roles: 2 created") {
		t.Fatalf("import:\n%s", out)
	}
	if out := importSC(); !strings.Contains(out, "nothing to change") {
		t.Fatalf("second import:\n%s", out)
	}
	if out, err := exec.Command(bin, "import", "sc", "--from-dump", filepath.Join(t.TempDir(), "missing.json"), "--data", data).CombinedOutput(); err == nil {
		t.Fatalf("import of a missing dump succeeded:\n%s", out)
	}

	// A token as Service Center signs it: only account, exp and roles.
	b, err := os.ReadFile(filepath.Join(fx, "private.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := jwt.NewWithClaims(jwt.SigningMethodRS512, jwt.MapClaims{
		"account": "alice", "exp": time.Now().Add(12 * time.Hour).Unix(), "roles": []string{"developer"},
	}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	tokens := []string{fresh}
	var issued struct {
		IssuedAt int64             `json:"issued_at_unix"`
		Tokens   map[string]string `json:"tokens"`
	}
	if b, err := os.ReadFile(filepath.Join(fx, "tokens.json")); err != nil || json.Unmarshal(b, &issued) != nil {
		t.Fatalf("tokens.json: %v", err)
	}
	if time.Now().Before(time.Unix(issued.IssuedAt, 0).Add(12 * time.Hour)) {
		tokens = append(tokens, issued.Tokens["alice"]) // still live: SC's own token too
	}

	_, addr, log := run(t, bin, nil, "serve", "--listen", "127.0.0.1:0", "--data", data)
	for _, tok := range tokens {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v4/self-perms", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("self-perms with an SC token: %d\n%s", resp.StatusCode, log)
		}
	}
}

// gatehouse import sc reads the store settings from serve's config file
// (--config), ignoring serve's other settings and sections, and refuses a
// key serve does not know.
func TestImportSCConfigFile(t *testing.T) {
	fx := scfixture.Dir(t)
	dump := filepath.Join(fx, "etcd.json")
	dir, data := t.TempDir(), t.TempDir()
	cfgFile := filepath.Join(dir, "gatehouse.yaml")
	conf := "listen: 127.0.0.1:0\ntoken-ttl: 2h\nstore: bolt\ndata: " + data + "\n" +
		"routes:\n  - prefix: /v4/\n    upstream: http://127.0.0.1:1\n"
	if err := os.WriteFile(cfgFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	importSC := func(args ...string) (string, string, int) {
		t.Helper()
		var out, errb bytes.Buffer
		code := execute(context.Background(), append([]string{"import", "sc", "--from-dump", dump}, args...), strings.NewReader(""), &out, &errb)
		return out.String(), errb.String(), code
	}
	if out, errs, code := importSC("--config", cfgFile); code != 0 || !strings.Contains(out, "accounts: 5 created") {
		t.Fatalf("import with --config: exit %d\n%s%s", code, out, errs)
	}
	// The import went into the file's data directory.
	if out, errs, code := importSC("--data", data); code != 0 || !strings.Contains(out, "nothing to change") {
		t.Fatalf("import into the file's data directory: exit %d\n%s%s", code, out, errs)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("data: "+data+"\nfrom-dump: "+dump+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := importSC("--config", bad); code == 0 || !strings.Contains(errs, `unknown setting "from-dump"`) {
		t.Fatalf("a key serve does not know was accepted: exit %d\n%s", code, errs)
	}
}
