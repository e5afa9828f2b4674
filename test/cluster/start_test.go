package cluster

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
)

// TestStartWithoutEtcd: a replica whose etcd cannot be reached at start-up
// gives up with a clear error and exit status 1, not a crash.
func TestStartWithoutEtcd(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := l.Addr().String()
	l.Close() // nothing listens there now

	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), "serve", "--store", "etcd", "--etcd-endpoints", endpoint, "--listen", "127.0.0.1:0")
	cmd.Dir = t.TempDir()
	cmd.Env = append(environ(), "GATEHOUSE_ROOT_PASSWORD="+rootPassword)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1\n%s", err, stderr.String())
	}
	if out := stderr.String(); !strings.Contains(out, "store: unavailable") || strings.Contains(out, "panic") {
		t.Fatalf("unclear failure:\n%s", out)
	}
}
