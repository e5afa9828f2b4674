package httpapi_test

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestAPIDocWalkthrough runs the ```sh blocks of docs/api.md, in order,
// against a fresh server: the curl examples work when pasted.
func TestAPIDocWalkthrough(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	doc, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	var script strings.Builder
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(string(doc), -1) {
		script.WriteString(m[1])
	}
	if script.Len() == 0 {
		t.Fatal("docs/api.md has no sh examples")
	}
	ts := start(t, nil)
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script.String())
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "GH="+ts.Base, "GATEHOUSE_ROOT_PASSWORD="+rootPW)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the examples of docs/api.md failed: %v\n%s", err, out)
	}
}
