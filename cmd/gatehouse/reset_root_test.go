package main

import (
	"context"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/internal/store/etcd/etcdtest"
)

const newRootPassword = "Brand-New-R00t!"

// banRoot fails root's login until this address is banned.
func banRoot(t *testing.T, srv *servertest.Server) {
	t.Helper()
	for range 3 {
		srv.Call("POST", "/v4/token", "", map[string]string{"name": "root", "password": "Wrong-Passw0rd!"})
	}
	if r := srv.Call("POST", "/v4/token", "", map[string]string{"name": "root", "password": servertest.RootPassword}); r.Status != 403 {
		t.Fatalf("root not banned: %d %s", r.Status, r.Body)
	}
}

// checkReset checks on a running server that root's old token and
// password are refused, the new password works despite the earlier ban,
// and the reset is audited.
func checkReset(t *testing.T, srv *servertest.Server, oldToken string) {
	t.Helper()
	if r := srv.Call("GET", "/v4/self-perms", oldToken, nil); r.Status != 401 {
		t.Fatalf("root's old token still works: %d", r.Status)
	}
	if r := srv.Call("POST", "/v4/token", "", map[string]string{"name": "root", "password": servertest.RootPassword}); r.Status != 401 {
		t.Fatalf("root's old password: %d %s", r.Status, r.Body)
	}
	tok := srv.Login("root", newRootPassword)
	var recs struct {
		Data []struct{ Actor, Action, Target, Outcome string }
	}
	srv.Call("GET", "/v4/audit?limit=1000", tok, nil).JSON(t, &recs)
	for _, r := range recs.Data {
		if r.Action == "account.reset-root" {
			if r.Target != "root" || r.Outcome != "success" || !strings.HasPrefix(r.Actor, "reset-root:") {
				t.Fatalf("audit record %+v", r)
			}
			return
		}
	}
	t.Fatalf("no account.reset-root audit record in %+v", recs.Data)
}

func TestResetRootBolt(t *testing.T) {
	e := &cliEnv{t: t}
	dir := t.TempDir()
	srv := servertest.Start(t, func(c *server.Config) { c.DataDir = dir })
	old := srv.Root()
	banRoot(t, srv)

	e.fail("in use by a running Gatehouse: stop it first", newRootPassword+"\n", "reset-root", "--data", dir, "--password-stdin")
	srv.Stop()
	e.fail("password policy", "weak\n", "reset-root", "--data", dir, "--password-stdin")
	e.fail("no Gatehouse store in", newRootPassword+"\n", "reset-root", "--data", t.TempDir(), "--password-stdin")
	e.fail("use --password-stdin", "", "reset-root", "--data", dir)
	if out := e.ok(newRootPassword+"\n", "reset-root", "--data", dir, "--password-stdin"); !strings.Contains(out, "root's password is reset") {
		t.Fatalf("reset-root said %q", out)
	}
	srv.Restart()
	checkReset(t, srv, old)
}

func TestResetRootEtcdWhileRunning(t *testing.T) {
	e := &cliEnv{t: t}
	cluster := etcdtest.Start(t, t.TempDir(), 1)
	endpoints := strings.Join(cluster.Endpoints(), ",")
	srv := servertest.Start(t, func(c *server.Config) { c.Store, c.EtcdEndpoints = "etcd", cluster.Endpoints() })
	old := srv.Root()
	banRoot(t, srv)

	e.ok(newRootPassword+"\n", "reset-root", "--store", "etcd", "--etcd-endpoints", endpoints, "--password-stdin")
	// The running replica follows the change from etcd.
	deadline := time.Now().Add(10 * time.Second)
	for srv.Call("GET", "/v4/self-perms", old, nil).Status != 401 {
		if time.Now().After(deadline) {
			t.Fatal("the running server still accepts root's old token")
		}
		time.Sleep(20 * time.Millisecond)
	}
	checkReset(t, srv, old)

	e.fail("no root account", newRootPassword+"\n", "reset-root", "--store", "etcd", "--etcd-endpoints", endpoints,
		"--etcd-prefix", "/elsewhere/", "--password-stdin")
	cli, err := clientv3.New(clientv3.Config{Endpoints: cluster.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	got, err := cli.Get(context.Background(), "/elsewhere/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || got.Count != 0 {
		t.Fatalf("a refused reset-root wrote %v keys under another prefix (%v)", got.Count, err)
	}
}
