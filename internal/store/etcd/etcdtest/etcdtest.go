// Package etcdtest runs real etcd clusters inside a test process: members
// of go.etcd.io/etcd/server/v3/embed listening on 127.0.0.1, keeping
// their data in a directory so that they can be stopped and started again
// on the same data and ports, as after a crash or an outage.
package etcdtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// startPatience bounds how long members may take to elect a leader and
// become ready.
const startPatience = time.Minute

// startAttempts is how often a new cluster is started on fresh ports when
// another process took one of the ports picked.
const startAttempts = 3

// layoutFile, in a cluster's directory, records its members' names and
// ports so that a later Start restarts the same cluster.
const layoutFile = "cluster.json"

// layout is what a cluster directory records.
type layout struct {
	Token   string
	Members []memberLayout
}

type memberLayout struct {
	Name       string
	ClientPort int
	PeerPort   int
}

// Cluster is a running (or stopped) set of in-process members.
type Cluster struct {
	tb     testing.TB
	dir    string
	layout layout

	mu      sync.Mutex
	members []*embed.Etcd // nil while stopped
}

// Start starts a cluster of size members keeping its data in dir, and
// waits until every member is ready. If dir holds a cluster started
// before, that cluster is started again with its data and ports (size is
// then ignored). The cluster is stopped when the test ends.
func Start(tb testing.TB, dir string, size int) *Cluster {
	tb.Helper()
	c := &Cluster{tb: tb, dir: dir}
	tb.Cleanup(c.Close)
	b, err := os.ReadFile(filepath.Join(dir, layoutFile))
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &c.layout); err != nil {
			tb.Fatalf("etcdtest: %s: %v", layoutFile, err)
		}
		c.members = make([]*embed.Etcd, len(c.layout.Members))
		if err := c.start(c.all()...); err != nil {
			tb.Fatalf("etcdtest: restart cluster in %s: %v", dir, err)
		}
	case errors.Is(err, os.ErrNotExist):
		c.create(size)
	default:
		tb.Fatalf("etcdtest: %v", err)
	}
	return c
}

// create starts a new cluster on free ports, trying other ports if one
// was taken meanwhile, and records its layout.
func (c *Cluster) create(size int) {
	c.tb.Helper()
	var err error
	for range startAttempts {
		c.layout = newLayout(c.tb, size)
		c.members = make([]*embed.Etcd, size)
		if err = c.start(c.all()...); err == nil {
			break
		}
		c.Close()
		if !errors.Is(err, syscall.EADDRINUSE) {
			c.tb.Fatalf("etcdtest: start cluster: %v", err)
		}
		for _, m := range c.layout.Members {
			if err := os.RemoveAll(c.memberDir(m)); err != nil {
				c.tb.Fatal(err)
			}
		}
	}
	if err != nil {
		c.tb.Fatalf("etcdtest: start cluster: %v", err)
	}
	b, err := json.Marshal(c.layout)
	if err != nil {
		c.tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, layoutFile), b, 0o600); err != nil {
		c.tb.Fatal(err)
	}
}

func newLayout(tb testing.TB, size int) layout {
	l := layout{Token: fmt.Sprintf("etcdtest-%x", rand.Uint64())}
	for i := range size {
		l.Members = append(l.Members, memberLayout{
			Name:       fmt.Sprintf("m%d", i),
			ClientPort: freePort(tb),
			PeerPort:   freePort(tb),
		})
	}
	return l
}

// freePort returns a port no one listens on at the moment.
func freePort(tb testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (c *Cluster) all() []int {
	idx := make([]int, len(c.layout.Members))
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// Endpoints returns the client URLs of every member, running or not.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.layout.Members {
		u := clientURL(m)
		eps = append(eps, u.String())
	}
	return eps
}

// Leader returns the index of the running member that leads the
// cluster, or -1 if none does.
func (c *Cluster) Leader() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, e := range c.members {
		if e != nil && e.Server.Leader() == e.Server.MemberID() {
			return i
		}
	}
	return -1
}

// Stop stops the given members (every member if none is given) as if they
// crashed, without handing leadership over, and waits until they are
// down. Stopping a stopped member does nothing.
func (c *Cluster) Stop(members ...int) {
	if len(members) == 0 {
		members = c.all()
	}
	var wg sync.WaitGroup
	for _, i := range members {
		c.mu.Lock()
		e := c.members[i]
		c.members[i] = nil
		c.mu.Unlock()
		if e != nil {
			wg.Go(func() { crash(e) })
		}
	}
	wg.Wait()
}

// Restart starts the given stopped members (every member if none is
// given) on their data and ports and waits until they are ready, failing
// the test if they are not.
func (c *Cluster) Restart(members ...int) {
	c.tb.Helper()
	if len(members) == 0 {
		members = c.all()
	}
	if err := c.start(members...); err != nil {
		c.tb.Fatalf("etcdtest: restart members %v: %v", members, err)
	}
}

// crash stops a member's raft node at once, then closes its listeners and
// connections.
func crash(e *embed.Etcd) {
	e.Server.HardStop()
	e.Close()
}

// Close stops every member.
func (c *Cluster) Close() { c.Stop() }

// start starts the given members and waits until they are ready.
func (c *Cluster) start(members ...int) error {
	var started []*embed.Etcd
	for _, i := range members {
		e, err := embed.StartEtcd(c.config(c.layout.Members[i]))
		if err != nil {
			return fmt.Errorf("member %d: %w", i, err)
		}
		c.mu.Lock()
		c.members[i] = e
		c.mu.Unlock()
		started = append(started, e)
	}
	timeout := time.After(startPatience)
	for _, e := range started {
		select {
		case <-e.Server.ReadyNotify():
		case err := <-e.Err():
			return fmt.Errorf("member %s: %w", e.Config().Name, err)
		case <-timeout:
			return fmt.Errorf("members not ready within %v", startPatience)
		}
	}
	return nil
}

// config is the configuration of one member: quiet, on loopback, with
// etcd's default timing so that a loaded machine does not cause
// elections.
func (c *Cluster) config(m memberLayout) *embed.Config {
	cfg := embed.NewConfig()
	cfg.Name = m.Name
	cfg.Dir = c.memberDir(m)
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.ListenClientUrls = []url.URL{clientURL(m)}
	cfg.AdvertiseClientUrls = cfg.ListenClientUrls
	cfg.ListenPeerUrls = []url.URL{peerURL(m)}
	cfg.AdvertisePeerUrls = cfg.ListenPeerUrls
	cfg.InitialClusterToken = c.layout.Token
	cfg.EnableGRPCGateway = false
	var initial []string
	for _, p := range c.layout.Members {
		u := peerURL(p)
		initial = append(initial, p.Name+"="+u.String())
	}
	cfg.InitialCluster = strings.Join(initial, ",")
	return cfg
}

func (c *Cluster) memberDir(m memberLayout) string {
	return filepath.Join(c.dir, m.Name)
}

func clientURL(m memberLayout) url.URL {
	return url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", m.ClientPort)}
}

func peerURL(m memberLayout) url.URL {
	return url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", m.PeerPort)}
}
