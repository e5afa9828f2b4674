// Package scfixture locates the data a real Service Center wrote
// (shared/fixtures/service-center), kept beside the repository: CI clones
// the repository with ../shared next to it.
package scfixture

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the fixture directory: shared/fixtures/service-center in
// the nearest directory above the module root (the one holding go.mod)
// that has it. It fails the test when there is none.
func Dir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("scfixture: no go.mod above the test directory")
		}
		dir = parent
	}
	for {
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("scfixture: no shared/fixtures/service-center beside the repository")
		}
		dir = parent
		fx := filepath.Join(dir, "shared", "fixtures", "service-center")
		if _, err := os.Stat(filepath.Join(fx, "etcd.json")); err == nil {
			return fx
		}
	}
}
