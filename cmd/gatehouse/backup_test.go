package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/internal/store/backup"
)

// TestCLIBackupRestore: backup writes an intact file (mode 0600) or
// stdout, quietly when stderr is no terminal; restore refuses a running
// server's directory, a non-empty one without --force and a damaged file,
// writing nothing; the restored directory serves root's login.
func TestCLIBackupRestore(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	t.Setenv("GATEHOUSE_SERVER", "")
	t.Setenv("GATEHOUSE_CA_FILE", "")
	var liveDir string
	e := &cliEnv{t: t, srv: servertest.Start(t, func(c *server.Config) { liveDir = c.DataDir })}
	e.login()
	e.ok("Passw0rd!ab\n", "account", "create", "alice", "--role", "admin", "--password-stdin")

	dir := t.TempDir()
	file := filepath.Join(dir, "gatehouse.backup")
	if out, errs, code := e.run("", "backup", "--out", file); code != 0 || out != "" || errs != "" {
		t.Fatalf("backup: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", st, err)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := backup.Read(bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := backup.Read(strings.NewReader(e.ok("", "backup", "--out", "-"))); err != nil {
		t.Fatalf("backup to stdout: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("backup left files behind: %v", entries)
	}

	e.fail("in use by a running Gatehouse: stop it first", "", "restore", "--from", file, "--data", liveDir)

	// Damaged files are refused before anything is written.
	target := filepath.Join(t.TempDir(), "data")
	for name, bad := range map[string][]byte{
		"truncated": raw[:len(raw)-10],
		"checksum":  append(bytes.Clone(raw[:len(raw)-1]), raw[len(raw)-1]^1),
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		e.fail(name, "", "restore", "--from", path, "--data", target)
		if _, err := os.Stat(target); !os.IsNotExist(err) {
			t.Fatalf("a %s backup was refused but %s was created (%v)", name, target, err)
		}
	}
	e.fail("nothing was written", "", "restore", "--from", filepath.Join(dir, "truncated"), "--data", target)

	if out := e.ok("", "restore", "--from", file, "--data", target); !strings.Contains(out, "restored") || !strings.Contains(out, "bolt backup") {
		t.Fatalf("restore said %q", out)
	}
	e.fail("add --force", "", "restore", "--from", file, "--data", target)
	if out := e.ok(string(raw), "restore", "--from", "-", "--data", target, "--force"); !strings.Contains(out, "replaced") {
		t.Fatalf("restore --force said %q", out)
	}
	e.fail("--force does not apply to etcd", "", "restore", "--from", file, "--store", "etcd", "--etcd-endpoints", "127.0.0.1:1", "--force")

	restored := servertest.Start(t, func(c *server.Config) { c.DataDir = target })
	restored.Login("alice", "Passw0rd!ab")

	// An admin is not root: the backup permission is root's alone by default.
	e.ok("Passw0rd!ab\n", "login", "--server", e.srv.Base, "--name", "alice", "--password-stdin")
	denied := filepath.Join(dir, "denied.backup")
	e.fail("backup permission", "", "backup", "--out", denied)
	if _, err := os.Stat(denied); !os.IsNotExist(err) {
		t.Errorf("a refused backup left %s (%v)", denied, err)
	}
}
