package architecture

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/gatehouse/gatehouse/"

// pkg is what `go list -json` says of one package.
type pkg struct {
	ImportPath string
	Imports    []string // direct imports
	Deps       []string // every package it links, transitively
}

// listPackages lists every package of the module with its imports.
func listPackages(t *testing.T) map[string]pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps=false", "-json=ImportPath,Imports,Deps", module+"...")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs[strings.TrimPrefix(p.ImportPath, module)] = p
	}
	if len(pkgs) == 0 {
		t.Fatal("go list found no package")
	}
	return pkgs
}

// own returns the module's packages among paths, without the module prefix.
func own(paths []string) []string {
	var out []string
	for _, p := range paths {
		if strings.HasPrefix(p, module) {
			out = append(out, strings.TrimPrefix(p, module))
		}
	}
	return out
}

// under reports whether path is dir or a package below it.
func under(path, dir string) bool { return path == dir || strings.HasPrefix(path, dir+"/") }

// domains are the three sibling domain packages.
var domains = []string{"internal/engine", "internal/apifabric", "internal/ccmessaging"}

// wire is the tree that holds every HTTP concern.
const wire = "internal/httpapi"

func TestDomainsAreSiblings(t *testing.T) {
	pkgs := listPackages(t)
	for _, d := range domains {
		p, ok := pkgs[d]
		if !ok {
			t.Fatalf("package %s not found", d)
		}
		for _, imp := range own(p.Imports) {
			if slices.Contains(domains, imp) {
				t.Errorf("domain %s imports domain %s: declare a small interface in %s and let internal/server plug %s in", d, imp, d, imp)
			}
			if under(imp, wire) || imp == "internal/server" {
				t.Errorf("domain %s imports %s: domains know nothing of HTTP or of the composition", d, imp)
			}
		}
	}
}

func TestLayersPointDown(t *testing.T) {
	pkgs := listPackages(t)
	// below lists packages that may import none of the module's packages
	// above them: the store, the key ring and authorization vocabulary
	// know no domain, no wire and no composition; telemetry, which every
	// layer starts spans with, knows only the store it wraps.
	above := append([]string{wire, "internal/server", "internal/keyring", "internal/authz"}, domains...)
	for path, p := range pkgs {
		var floor []string
		switch {
		case under(path, "internal/store"), path == "internal/apierror", path == "internal/password", path == "internal/tokencache",
			path == "internal/telemetry":
			floor = above
		case path == "internal/authz", path == "internal/keyring":
			floor = append([]string{wire, "internal/server"}, domains...)
		default:
			continue
		}
		for _, imp := range own(p.Imports) {
			for _, f := range floor {
				if under(imp, f) && !under(path, f) {
					t.Errorf("%s imports %s, which sits above it", path, imp)
				}
			}
		}
	}
}

func TestPublicPackagesStandAlone(t *testing.T) {
	for path, p := range listPackages(t) {
		if !under(path, "pkg") {
			continue
		}
		for _, imp := range own(p.Imports) {
			if under(imp, "internal") {
				t.Errorf("%s imports %s: packages under pkg/ are imported by other programs and may not use internal ones", path, imp)
			}
		}
	}
}

func TestProductDoesNotLinkTheBenchmark(t *testing.T) {
	p, ok := listPackages(t)["cmd/gatehouse"]
	if !ok {
		t.Fatal("cmd/gatehouse not found")
	}
	deps := own(p.Deps)
	if !slices.Contains(deps, "internal/server") {
		t.Fatalf("go list does not show cmd/gatehouse linking internal/server; it listed %v", deps)
	}
	for _, dep := range deps {
		if under(dep, "internal/bench") || under(dep, "cmd/gatehouse-bench") {
			t.Errorf("the gatehouse binary links %s: the load generator belongs to cmd/gatehouse-bench only", dep)
		}
	}
}

func TestHTTPLivesInTheWire(t *testing.T) {
	// Besides the wire tree, only the composition, its test support, the
	// commands and the importable client packages may speak HTTP.
	speakers := []string{wire, "internal/server", "internal/servertest", "internal/bench", "cmd", "pkg", "test"}
	for path, p := range listPackages(t) {
		if !slices.Contains(p.Imports, "net/http") || slices.ContainsFunc(speakers, func(s string) bool { return under(path, s) }) {
			continue
		}
		t.Errorf("%s imports net/http: HTTP concerns belong under %s", path, wire)
	}
}

// TestRetiredDependencies keeps retired modules out of the binary: the
// archived gopkg.in/yaml.v3 (go.yaml.in/yaml/v3 took its place) and
// etcd's raft, linked once for one error value.
func TestRetiredDependencies(t *testing.T) {
	p, ok := listPackages(t)["cmd/gatehouse"]
	if !ok {
		t.Fatal("cmd/gatehouse not found")
	}
	for _, dep := range p.Deps {
		if under(dep, "gopkg.in/yaml.v3") || under(dep, "go.etcd.io/raft/v3") {
			t.Errorf("the gatehouse binary links %s", dep)
		}
	}
}
