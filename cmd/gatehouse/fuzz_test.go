package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// flagValues returns the value of every flag of flags; list flags as
// their trimmed elements joined by newlines.
func flagValues(flags *pflag.FlagSet) map[string]string {
	out := map[string]string{}
	flags.VisitAll(func(f *pflag.Flag) {
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			elems := slices.Clone(sv.GetSlice())
			for i := range elems {
				elems[i] = strings.TrimSpace(elems[i])
			}
			out[f.Name] = strings.Join(elems, "\n")
			return
		}
		out[f.Name] = f.Value.String()
	})
	return out
}

// FuzzConfig feeds a YAML config file, one GATEHOUSE_* variable and
// command-line flags to the serve command's settings loader. Flags win
// over the environment and the environment over the file; a string
// setting takes the file's text as written (0123 is not 83) and a null
// leaves a setting unset; the settings loaded, written back as a file,
// load to the same settings; and reading the file's routes never panics.
func FuzzConfig(f *testing.F) {
	dir := f.TempDir()
	file, again := filepath.Join(dir, "gatehouse.yaml"), filepath.Join(dir, "again.yaml")
	f.Add("listen: 127.0.0.1:0\ntoken-ttl: 2h\ntrusted-proxies: [10.0.0.1, 10.0.0.0/8]\n", "rate-limit", "5", "--listen=127.0.0.1:9")
	f.Add("listen: 0x10\ndata: ~\n", "", "", "")
	f.Add("etcd-prefix: 0123\nstore: 1.50\n", "data", " /var/lib/x ", "")
	f.Add("trusted-proxies: 10.0.0.1, 10.0.0.2\nupstream: [\"/v4/=http://127.0.0.1:1\"]\n", "trusted-proxies", "10.0.0.3,10.0.0.4", "--rsa-bits=3072")
	f.Add("routes:\n  - prefix: /v4/\n    upstream: http://127.0.0.1:1\n    timeout: 5s\n", "", "", "")
	f.Add("routes: [{prefix: /x, upstream: 'http://h', bogus: 1}]\n", "", "", "")
	f.Add("nope: 1\n", "", "", "")
	f.Add("listen: {a: b}\n", "", "", "")
	f.Fuzz(func(t *testing.T, text, envFlag, envValue, args string) {
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		flags := newServeCmd().Flags()
		var argv []string
		if args != "" {
			argv = strings.Split(args, "\n")
		}
		if flags.Parse(argv) != nil || flags.Lookup("config").Changed || flags.NArg() > 0 {
			return
		}
		fromArgs := map[string]string{}
		flags.Visit(func(fl *pflag.Flag) { fromArgs[fl.Name] = flagValues(flags)[fl.Name] })
		env := flags.Lookup(envFlag)
		if env != nil && envFlag != "config" && !strings.ContainsRune(envValue, 0) {
			t.Setenv(envName(env), envValue)
		} else {
			env = nil
		}
		_, _ = gatewayRoutes(file, nil)
		if applyEnvAndFile(flags, file) != nil {
			return
		}
		got := flagValues(flags)
		for name, v := range fromArgs {
			if got[name] != v {
				t.Fatalf("--%s was %q on the command line, %q after loading", name, v, got[name])
			}
		}
		if _, set := fromArgs[envFlag]; env != nil && !set && !isList(env) {
			if want := strings.TrimSpace(envValue); got[env.Name] != want && env.Value.Type() == "string" {
				t.Fatalf("%s=%q set %q", envName(env), envValue, got[env.Name])
			}
		}
		var doc map[string]yaml.Node
		_ = yaml.Unmarshal([]byte(text), &doc)
		for name, node := range doc {
			fl := flags.Lookup(name)
			if _, set := fromArgs[name]; fl == nil || fl.Value.Type() != "string" || set || (env != nil && env.Name == name) {
				continue
			}
			if node.Kind == yaml.ScalarNode && node.Tag == "!!null" && fl.Changed {
				t.Fatalf("%s: null in the file set %q", name, got[name])
			}
			if node.Kind == yaml.ScalarNode && node.Tag != "!!null" && got[name] != strings.TrimSpace(node.Value) {
				t.Fatalf("%s: %q in the file set %q", name, node.Value, got[name])
			}
		}
		// The settings of the file and the environment, written back: a
		// string slice as the comma-separated text its flag parses (an
		// element may hold a comma), other lists as YAML sequences.
		out := map[string]any{}
		flags.VisitAll(func(fl *pflag.Flag) {
			if _, set := fromArgs[fl.Name]; !fl.Changed || set {
				return
			}
			sv, list := fl.Value.(pflag.SliceValue)
			switch {
			case fl.Value.Type() == "stringSlice":
				out[fl.Name] = strings.TrimSuffix(strings.TrimPrefix(fl.Value.String(), "["), "]")
			case list:
				out[fl.Name] = sv.GetSlice()
			default:
				out[fl.Name] = fl.Value.String()
			}
		})
		b, err := yaml.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(again, b, 0o600); err != nil {
			t.Fatal(err)
		}
		reloaded := newServeCmd().Flags()
		if err := applyEnvAndFile(reloaded, again); err != nil {
			t.Fatalf("the settings loaded, written back as\n%s\ndo not load: %v", b, err)
		}
		for name, v := range flagValues(reloaded) {
			if _, set := fromArgs[name]; set || (env != nil && name == env.Name) {
				continue // not from the file; the variable still wins over it
			}
			if v != got[name] {
				t.Fatalf("--%s loaded as %q, written back as\n%s\nloads as %q", name, got[name], b, v)
			}
		}
	})
}
