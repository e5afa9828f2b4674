package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestBenchmarkNotLinked checks that the gatehouse binary does not link
// the load generator: the benchmark is cmd/gatehouse-bench, which drives
// servers from outside.
func TestBenchmarkNotLinked(t *testing.T) {
	const module = "github.com/gatehouse/gatehouse/"
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, module+"internal/server") {
		t.Fatalf("go list -deps does not list internal/server; it listed:\n%s", out)
	}
	for _, p := range deps {
		if p == module+"internal/bench" || strings.HasPrefix(p, module+"internal/bench/") || strings.HasPrefix(p, module+"cmd/gatehouse-bench") {
			t.Errorf("the gatehouse binary links %s", p)
		}
	}
}
