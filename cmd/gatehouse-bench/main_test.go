package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestJSONReport runs the command as a user would, on one short scenario
// against an in-process server, and checks that its flags reach the run
// and its JSON report comes out on stdout.
func TestJSONReport(t *testing.T) {
	var stdout, stderr bytes.Buffer
	cmd := newCmd()
	cmd.SetArgs([]string{"--scenarios", "floor", "--duration", "200ms", "--connections", "2", "--json"})
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	if err := cmd.ExecuteContext(t.Context()); err != nil {
		t.Fatalf("gatehouse-bench: %v\n%s", err, stderr.String())
	}
	var rep struct {
		Server      string  `json:"server"`
		DurationS   float64 `json:"duration_s"`
		Connections int     `json:"connections"`
		Scenarios   []struct {
			Name     string `json:"name"`
			Requests uint64 `json:"requests"`
			Errors   uint64 `json:"errors"`
		} `json:"scenarios"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("stdout is not a JSON report: %v\n%s", err, stdout.String())
	}
	if rep.Server != "in-process" || rep.DurationS != 0.2 || rep.Connections != 2 {
		t.Errorf("server %q, duration %v s, %d connections; want in-process, 0.2 s, 2", rep.Server, rep.DurationS, rep.Connections)
	}
	if len(rep.Scenarios) != 1 || rep.Scenarios[0].Name != "floor" || rep.Scenarios[0].Requests == 0 || rep.Scenarios[0].Errors != 0 {
		t.Errorf("scenarios %+v, want floor alone, with requests and no errors", rep.Scenarios)
	}
}

// TestTargetNeedsRootPassword checks that --target without a root
// password, on the command line or in the environment, is refused.
func TestTargetNeedsRootPassword(t *testing.T) {
	t.Setenv("GATEHOUSE_ROOT_PASSWORD", "")
	t.Setenv("SC_INIT_ROOT_PASSWORD", "")
	cmd := newCmd()
	cmd.SetArgs([]string{"--target", "http://127.0.0.1:1"})
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	if err := cmd.ExecuteContext(t.Context()); err == nil || !strings.Contains(err.Error(), "root password") {
		t.Fatalf("err = %v, want one asking for the root password", err)
	}
}
