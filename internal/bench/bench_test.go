package bench_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/bench"
)

// TestRunInProcess runs every load scenario briefly against in-process
// servers and checks the report: every scenario present, with traffic, no
// error, and the fields the JSON promises.
func TestRunInProcess(t *testing.T) {
	var log bytes.Buffer
	rep, err := bench.Run(t.Context(), bench.Config{
		Duration: 200 * time.Millisecond, Connections: 2, Scenarios: bench.DefaultScenarios, Log: &log,
	})
	if err != nil {
		t.Fatalf("Run: %v\nserver log:\n%s", err, log.String())
	}
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		LoginLimitRPS *float64 `json:"login_limit_rps"`
		Scenarios     []map[string]any
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.LoginLimitRPS == nil || *doc.LoginLimitRPS <= 0 {
		t.Errorf("login_limit_rps missing or not positive in %s", raw)
	}
	var names []string
	for _, s := range doc.Scenarios {
		name, _ := s["name"].(string)
		names = append(names, name)
		fields := []string{"requests", "errors", "rps", "ratio", "p50_ms", "p90_ms", "p99_ms", "cpu_us", "warnings"}
		if s["ratio_to"] == bench.Floor && name != bench.Floor {
			fields = append(fields, "floor_rps")
		}
		for _, field := range fields {
			if _, ok := s[field].(float64); !ok {
				t.Errorf("scenario %s: field %q missing or not a number", name, field)
			}
		}
		if s["requests"] == 0.0 || s["rps"] == 0.0 || s["ratio"] == 0.0 {
			t.Errorf("scenario %s sent nothing: %v", name, s)
		}
		if s["errors"] != 0.0 || s["warnings"] != 0.0 {
			t.Errorf("scenario %s: %v errors (first: %v), %v server warnings (last: %v)",
				name, s["errors"], s["first_error"], s["warnings"], s["last_warning"])
		}
	}
	if !slices.Equal(names, bench.DefaultScenarios) {
		t.Errorf("scenarios %v, want %v", names, bench.DefaultScenarios)
	}
	var table bytes.Buffer
	if err := bench.WriteTable(&table, rep); err != nil {
		t.Fatal(err)
	}
	for _, name := range append(names, "login_limit_rps") {
		if !strings.Contains(table.String(), name) {
			t.Errorf("the table does not mention %s:\n%s", name, table.String())
		}
	}
}

func TestConfigRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  bench.Config
		want string
	}{
		{"unknown scenario", bench.Config{Scenarios: []string{"nope"}}, "unknown scenario"},
		{"scale on a running server", bench.Config{Target: "http://127.0.0.1:1", RootPassword: "x", Scenarios: []string{bench.Scale}}, "in-process"},
		{"running server without root password", bench.Config{Target: "http://127.0.0.1:1"}, "root password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bench.Run(t.Context(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// TestScale runs the scale scenario on a few thousand sessions and checks
// that it measured what it reports.
func TestScale(t *testing.T) {
	rep, err := bench.Run(t.Context(), bench.Config{
		Duration: 100 * time.Millisecond, Connections: 2, Scenarios: []string{bench.Scale}, Sessions: 3000,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Scale
	switch {
	case s == nil:
		t.Fatal("no scale result")
	case s.Sessions != 3000 || s.BaselineSessions != 1000:
		t.Errorf("measured %d and %d sessions, want 3000 and 1000", s.Sessions, s.BaselineSessions)
	case s.SessionRPS <= 0 || s.BaselineRPS <= 0 || s.SessionErrors+s.BaselineErrors != 0:
		t.Errorf("session runs: %.0f and %.0f req/s, %d and %d errors", s.SessionRPS, s.BaselineRPS, s.SessionErrors, s.BaselineErrors)
	case s.RestartS <= 0 || s.StoreFileBytes == 0 || s.HeapBytes == 0:
		t.Errorf("restart %.3f s, store file %d bytes, heap %d bytes", s.RestartS, s.StoreFileBytes, s.HeapBytes)
	}
}
