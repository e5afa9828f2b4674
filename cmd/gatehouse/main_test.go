package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// binary builds the gatehouse command once per test run.
func binary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gatehouse")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// run starts the binary and returns it with the address from its
// "listening" log line.
func run(t *testing.T, bin string, env []string, args ...string) (*exec.Cmd, string, *logLines) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	log := &logLines{}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			log.add(line)
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				addr <- rec.Addr
			}
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatalf("server exited before listening")
		}
		return cmd, a, log
	case <-time.After(60 * time.Second):
		t.Fatal("no listening line")
	}
	return nil, "", nil
}

// logLines collects a process's stderr lines while tests read them.
type logLines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logLines) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(line + "\n")
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestServeLifecycle(t *testing.T) {
	bin := binary(t)
	data := t.TempDir()
	cmd, addr, log := run(t, bin, nil, "serve", "--listen", "127.0.0.1:0", "--data", data)

	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("healthz: %d %q", resp.StatusCode, body)
	}
	// No root password was given: one is generated and printed once.
	if !strings.Contains(log.String(), "generated password: ") {
		t.Fatalf("generated root password not printed:\n%s", log)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	// Once root exists the generated password is not printed again.
	_, _, log2 := run(t, bin, []string{"GATEHOUSE_ROOT_PASSWORD=Other-Passw0rd!"}, "serve", "--listen", "127.0.0.1:0", "--data", data)
	if strings.Contains(log2.String(), "generated password") {
		t.Fatal("password printed on second start")
	}
}

func TestWeakRootPasswordStopsStartup(t *testing.T) {
	bin := binary(t)
	for _, env := range []string{"GATEHOUSE_ROOT_PASSWORD=short", "SC_INIT_ROOT_PASSWORD=alllowercase1!"} {
		cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir())
		cmd.Env = append(os.Environ(), env)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("%s: started", env)
		}
		if !strings.Contains(string(out), "password policy") || strings.Contains(string(out), strings.SplitN(env, "=", 2)[1]) {
			t.Fatalf("%s: unclear message or password echoed:\n%s", env, out)
		}
	}
}

func TestSettingsPrecedence(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "gatehouse.yaml")
	if err := os.WriteFile(cfgFile, []byte("listen: 127.0.0.1:1111\nlockout-attempts: 7\ntoken-ttl: 2h\ntrusted-proxies: [10.0.0.1, 10.0.0.0/8]\nrsa-bits: 3072\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GATEHOUSE_LOCKOUT_ATTEMPTS", "5")
	t.Setenv("GATEHOUSE_TOKEN_TTL", "3h")
	var got map[string]string
	cmd := newServeCmd()
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := applyEnvAndFile(cmd.Flags(), cfgFile); err != nil {
			return err
		}
		got = map[string]string{}
		for _, n := range []string{"listen", "lockout-attempts", "token-ttl", "trusted-proxies", "rsa-bits"} {
			got[n] = cmd.Flags().Lookup(n).Value.String()
		}
		return nil
	}
	cmd.SetArgs([]string{"--config", cfgFile, "--token-ttl", "4h"})
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"listen":           "127.0.0.1:1111",        // file
		"lockout-attempts": "5",                     // env over file
		"token-ttl":        "4h0m0s",                // flag over env and file
		"trusted-proxies":  "[10.0.0.1,10.0.0.0/8]", // list from file
		"rsa-bits":         "3072",                  // file
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	_ = os.WriteFile(bad, []byte("no-such-flag: 1\n"), 0o600)
	cmd = newServeCmd()
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return applyEnvAndFile(cmd.Flags(), bad) }
	cmd.SetArgs([]string{"--config", bad})
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "unknown setting") {
		t.Fatalf("unknown key accepted: %v", err)
	}
}

// TestConfigFileFromEnv checks that GATEHOUSE_CONFIG names the settings
// file when --config is not given, as for any other flag.
func TestConfigFileFromEnv(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "gatehouse.yaml")
	if err := os.WriteFile(cfgFile, []byte("listen: 127.0.0.1:2222\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GATEHOUSE_CONFIG", cfgFile)
	var listen, config string
	cmd := newServeCmd()
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := applyEnvAndFile(cmd.Flags(), ""); err != nil {
			return err
		}
		listen, config = cmd.Flags().Lookup("listen").Value.String(), cmd.Flags().Lookup("config").Value.String()
		return nil
	}
	cmd.SetArgs(nil)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	if listen != "127.0.0.1:2222" || config != cfgFile {
		t.Fatalf("listen %q, config %q: the file named by GATEHOUSE_CONFIG was not read", listen, config)
	}
}

// TestFeedHeartbeatFlag: --feed-heartbeat reaches the server: with 1s,
// a heartbeat arrives on GET /v4/revocations well before the default
// 10 s would send one.
func TestFeedHeartbeatFlag(t *testing.T) {
	bin := binary(t)
	_, addr, _ := run(t, bin, []string{"GATEHOUSE_ROOT_PASSWORD=Root-Passw0rd!"},
		"serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--feed-heartbeat", "1s")
	base := "http://" + addr
	resp, err := http.Post(base+"/v4/token", "application/json", strings.NewReader(`{"name":"root","password":"Root-Passw0rd!"}`))
	if err != nil {
		t.Fatal(err)
	}
	var login struct{ Token string }
	err = json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("login: %d %v", resp.StatusCode, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/v4/revocations", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+login.Token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revocations: %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if sc.Text() == ": heartbeat" {
			return
		}
	}
	t.Fatalf("no heartbeat within 5s: %v", sc.Err())
}

// TestFeedHeartbeatBounds: a --feed-heartbeat under 1s or over 15s, from
// the command line, the environment or the config file, stops start-up
// before anything is served.
func TestFeedHeartbeatBounds(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "gatehouse.yaml")
	if err := os.WriteFile(cfgFile, []byte("feed-heartbeat: 20s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  string
		args []string
	}{
		{"zero", "", []string{"--feed-heartbeat", "0s"}},
		{"negative", "", []string{"--feed-heartbeat", "-1s"}},
		{"under a second", "", []string{"--feed-heartbeat", "500ms"}},
		{"over 15s", "", []string{"--feed-heartbeat", "16s"}},
		{"environment", "1h", nil},
		{"config file", "", []string{"--config", cfgFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("GATEHOUSE_FEED_HEARTBEAT", tc.env)
			}
			// Were the value taken, the server would start and stop at
			// once: the context is over.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			cmd := newServeCmd()
			cmd.SetArgs(append([]string{"--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "error"}, tc.args...))
			if err := cmd.ExecuteContext(ctx); err == nil || !strings.Contains(err.Error(), "--feed-heartbeat") || !strings.Contains(err.Error(), "want 1s to 15s") {
				t.Fatalf("start-up: %v, want a refusal of --feed-heartbeat", err)
			}
		})
	}
}
