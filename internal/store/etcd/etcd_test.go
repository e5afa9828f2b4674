package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/etcd"
	"github.com/gatehouse/gatehouse/internal/store/etcd/etcdtest"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// patience bounds every wait of these tests.
const patience = 60 * time.Second

var prefixes atomic.Int64

// newPrefix returns a key prefix no other store of the test binary uses.
func newPrefix() string {
	return fmt.Sprintf("/test/%d/", prefixes.Add(1))
}

// openStore opens a store on endpoints with cfg's other settings, closing
// it when the test ends.
func openStore(tb testing.TB, endpoints []string, cfg etcd.Config) *etcd.Store {
	tb.Helper()
	cfg.Endpoints = endpoints
	if cfg.Prefix == "" {
		cfg.Prefix = newPrefix()
	}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := etcd.Open(tb.Context(), cfg)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// rawClient is a plain etcd client for looking behind the store.
func rawClient(t *testing.T, c *etcdtest.Cluster) *clientv3.Client {
	t.Helper()
	client, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: patience, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

func TestConformance(t *testing.T) {
	for _, size := range []int{1, 3} {
		t.Run(fmt.Sprintf("members=%d", size), func(t *testing.T) {
			t.Parallel()
			c := etcdtest.Start(t, t.TempDir(), size)
			storetest.Run(t, func(t *testing.T) store.Store {
				return openStore(t, c.Endpoints(), etcd.Config{})
			})
		})
	}
}

// memberStore is a store whose Close also stops the single-member cluster
// it runs on, so that the storetest persistence and crash suites can
// reopen its directory.
type memberStore struct {
	*etcd.Store
	cluster *etcdtest.Cluster
}

func (m memberStore) Close() error {
	err := m.Store.Close()
	m.cluster.Close()
	return err
}

func openDir(t *testing.T, dir string) store.Store {
	c := etcdtest.Start(t, dir, 1)
	m := memberStore{openStore(t, c.Endpoints(), etcd.Config{Prefix: "/gatehouse/"}), c}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestPersistence(t *testing.T) {
	t.Parallel()
	storetest.RunPersistence(t, openDir)
}

func TestCrash(t *testing.T) {
	t.Parallel()
	storetest.RunCrash(t, openDir)
}

func TestOpenRefuses(t *testing.T) {
	c := etcdtest.Start(t, t.TempDir(), 1)
	tests := []struct {
		name    string
		cfg     etcd.Config
		wantErr error
	}{
		{"no endpoints", etcd.Config{}, nil},
		{"prefix without slash", etcd.Config{Endpoints: c.Endpoints(), Prefix: "/gatehouse"}, nil},
		{"nobody listening", etcd.Config{Endpoints: []string{"http://127.0.0.1:1"}, DialTimeout: time.Second}, store.ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := etcd.Open(t.Context(), tc.cfg)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Open: err = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestEmptyKeyRefused(t *testing.T) {
	c := etcdtest.Start(t, t.TempDir(), 1)
	s := openStore(t, c.Endpoints(), etcd.Config{})
	if _, err := s.Put(t.Context(), store.Item{Value: []byte("v")}); err == nil {
		t.Fatal("Put with an empty key succeeded")
	}
	if items, _, err := s.List(t.Context(), ""); err != nil || len(items) != 0 {
		t.Fatalf("List after refused Put = %v, %v; want nothing", items, err)
	}
}

// TestExpiredIsInvisibleBeforeLease checks every operation against an
// item whose expiry passed while its lease (at least a second, rounded up
// by etcd) still keeps it in etcd.
func TestExpiredIsInvisibleBeforeLease(t *testing.T) {
	c := etcdtest.Start(t, t.TempDir(), 1)
	s := openStore(t, c.Endpoints(), etcd.Config{})
	ctx := t.Context()
	it, err := s.Put(ctx, store.Item{Key: "k", Value: []byte("v"), Expires: time.Now().Add(-time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get: err = %v, want ErrNotFound", err)
	}
	if items, _, err := s.List(ctx, ""); err != nil || len(items) != 0 {
		t.Errorf("List = %v, %v; want nothing", items, err)
	}
	if _, err := s.CompareAndSwap(ctx, it.Revision, store.Item{Key: "k"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CompareAndSwap: err = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Delete: err = %v, want ErrNotFound", err)
	}
	_, err = s.Update(ctx, "k", func(cur *store.Item) (*store.Item, error) {
		if cur != nil {
			return nil, fmt.Errorf("Update saw the expired item %+v", *cur)
		}
		return nil, nil
	})
	if err != nil {
		t.Error(err)
	}
	if _, err := s.Create(ctx, store.Item{Key: "k", Value: []byte("new")}); err != nil {
		t.Errorf("Create over the expired item: %v", err)
	}
}

// TestLeaseSharing checks that items expiring within the same second share
// a lease, that other seconds get other leases, and that an item
// rewritten without expiry leaves its lease.
func TestLeaseSharing(t *testing.T) {
	c := etcdtest.Start(t, t.TempDir(), 1)
	prefix := newPrefix()
	s := openStore(t, c.Endpoints(), etcd.Config{Prefix: prefix})
	raw := rawClient(t, c)
	// Expiries a minute away are bucketed by the second (see leaseEnd).
	second := time.Now().Add(time.Minute).Truncate(time.Second)
	puts := []store.Item{
		{Key: "a", Expires: second.Add(100 * time.Millisecond)},
		{Key: "b", Expires: second.Add(900 * time.Millisecond)},
		{Key: "c", Expires: second.Add(1100 * time.Millisecond)},
		{Key: "d", Expires: second.Add(1100 * time.Millisecond)},
		{Key: "d"},
	}
	for _, it := range puts {
		if _, err := s.Put(t.Context(), it); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := raw.Get(t.Context(), prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	lease := map[string]clientv3.LeaseID{}
	for _, kv := range resp.Kvs {
		lease[strings.TrimPrefix(string(kv.Key), prefix)] = clientv3.LeaseID(kv.Lease)
	}
	switch {
	case lease["a"] == 0 || lease["c"] == 0:
		t.Errorf("expiring items without a lease: %v", lease)
	case lease["a"] != lease["b"]:
		t.Errorf("items of the same second got leases %x and %x, want one", lease["a"], lease["b"])
	case lease["a"] == lease["c"]:
		t.Errorf("items of different seconds share lease %x", lease["a"])
	case lease["d"] != 0:
		t.Errorf("item rewritten without expiry kept lease %x", lease["d"])
	}
	ttl, err := raw.TimeToLive(t.Context(), lease["a"])
	if err != nil {
		t.Fatal(err)
	}
	if ttl.GrantedTTL <= 50 || ttl.GrantedTTL > 62 {
		t.Errorf("lease of items expiring in a minute granted for %ds", ttl.GrantedTTL)
	}
}

// TestRevokedLeaseReplaced checks that a write whose shared lease was
// revoked behind the store's back gets a new lease.
func TestRevokedLeaseReplaced(t *testing.T) {
	c := etcdtest.Start(t, t.TempDir(), 1)
	prefix := newPrefix()
	s := openStore(t, c.Endpoints(), etcd.Config{Prefix: prefix})
	raw := rawClient(t, c)
	expires := time.Now().Add(time.Hour)
	if _, err := s.Put(t.Context(), store.Item{Key: "a", Expires: expires}); err != nil {
		t.Fatal(err)
	}
	resp, err := raw.Get(t.Context(), prefix+"a")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("raw Get = %v, %v", resp, err)
	}
	if _, err := raw.Revoke(t.Context(), clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	b, err := s.Put(t.Context(), store.Item{Key: "b", Value: []byte("b"), Expires: expires})
	if err != nil {
		t.Fatalf("Put with the revoked lease's expiry: %v", err)
	}
	got, err := s.Get(t.Context(), "b")
	if err != nil || got.Revision != b.Revision {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, b)
	}
	if _, err := s.Get(t.Context(), "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of the item of the revoked lease: err = %v, want ErrNotFound", err)
	}
}

func TestPrefixIsolation(t *testing.T) {
	c := etcdtest.Start(t, t.TempDir(), 1)
	ctx := t.Context()
	stores := []*etcd.Store{
		openStore(t, c.Endpoints(), etcd.Config{Prefix: "/one/"}),
		openStore(t, c.Endpoints(), etcd.Config{Prefix: "/two/"}),
	}
	var watchers []store.Watcher
	for _, s := range stores {
		_, rev, err := s.List(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		w, err := s.Watch(ctx, "", rev+1)
		if err != nil {
			t.Fatal(err)
		}
		watchers = append(watchers, w)
	}
	for i, s := range stores {
		for _, key := range []string{"shared", fmt.Sprintf("own/%d", i)} {
			if _, err := s.Put(ctx, store.Item{Key: key, Value: fmt.Appendf(nil, "%d", i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, s := range stores {
		items, _, err := s.List(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		want := []string{fmt.Sprintf("own/%d", i), "shared"}
		if len(items) != 2 || items[0].Key != want[0] || items[1].Key != want[1] {
			t.Fatalf("store %d lists %+v, want keys %q", i, items, want)
		}
		for _, it := range items {
			if string(it.Value) != fmt.Sprint(i) {
				t.Errorf("store %d: %q = %q, want its own value", i, it.Key, it.Value)
			}
		}
		for range 2 {
			ev := nextEvent(t, watchers[i])
			if string(ev.Item.Value) != fmt.Sprint(i) || ev.Item.Key == fmt.Sprintf("own/%d", 1-i) {
				t.Errorf("store %d saw event %+v of the other store", i, ev)
			}
		}
	}
}

// nextEvent returns the watcher's next event, failing the test if the
// watch ends or nothing arrives in time.
func nextEvent(t *testing.T, w store.Watcher) store.Event {
	t.Helper()
	select {
	case ev, ok := <-w.Events():
		if !ok {
			t.Fatalf("watch ended: %v", w.Err())
		}
		return ev
	case <-time.After(patience):
	}
	t.Fatalf("no event within %v", patience)
	return store.Event{}
}

// TestMemberLoss stops the leader of a three-member cluster while a writer
// streams Puts: every acknowledged write must be readable afterwards, and
// writes must go on.
func TestMemberLoss(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, t.TempDir(), 3)
	s := openStore(t, c.Endpoints(), etcd.Config{RequestTimeout: 3 * time.Second})
	ctx, cancel := context.WithCancel(t.Context())
	w := startWriter(ctx, s)

	w.waitAcks(t, 30)
	leader := c.Leader()
	if leader < 0 {
		leader = 0
	}
	c.Stop(leader)
	w.waitAcks(t, w.count()+100)
	cancel()
	acked := w.wait(t)

	for key, value := range acked {
		it, err := s.Get(t.Context(), key)
		if err != nil || string(it.Value) != value {
			t.Fatalf("acknowledged write %q = %q, %v; want %q", key, it.Value, err, value)
		}
	}
	items, _, err := s.List(t.Context(), "w/")
	if err != nil {
		t.Fatal(err)
	}
	if len(items) < len(acked) {
		t.Fatalf("List has %d items, want at least the %d acknowledged", len(items), len(acked))
	}
}

// writer Puts w/000000, w/000001, ... in order, retrying a key until its
// Put is acknowledged.
type writer struct {
	done chan struct{}

	mu     sync.Mutex
	acked  map[string]string
	failed error
}

func startWriter(ctx context.Context, s store.Store) *writer {
	w := &writer{done: make(chan struct{}), acked: map[string]string{}}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			key, value := fmt.Sprintf("w/%06d", i), fmt.Sprintf("value-%d", i)
			for {
				_, err := s.Put(ctx, store.Item{Key: key, Value: []byte(value)})
				if ctx.Err() != nil {
					return
				}
				if err == nil {
					w.ack(key, value)
					break
				}
				if !errors.Is(err, store.ErrUnavailable) {
					w.fail(fmt.Errorf("Put(%q): %w, want nil or ErrUnavailable", key, err))
					return
				}
			}
		}
	}()
	return w
}

func (w *writer) ack(key, value string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.acked[key] = value
}

func (w *writer) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.failed = err
}

func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// waitAcks waits until n writes were acknowledged.
func (w *writer) waitAcks(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for w.count() < n {
		select {
		case <-w.done:
			t.Fatalf("writer stopped after %d acknowledged writes: %v", w.count(), w.failed)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writes acknowledged within %v, want %d", w.count(), patience, n)
		}
	}
}

// wait waits for the cancelled writer and returns what it acknowledged.
func (w *writer) wait(t *testing.T) map[string]string {
	t.Helper()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed != nil {
		t.Fatal(w.failed)
	}
	return w.acked
}

// view is a Handler keeping a map of key to value.
type view struct {
	mu    sync.Mutex
	items map[string]string
}

func (v *view) Reset(items []store.Item) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.items = map[string]string{}
	for _, it := range items {
		v.items[it.Key] = string(it.Value)
	}
}

func (v *view) Apply(ev store.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if ev.Type == store.EventDelete {
		delete(v.items, ev.Item.Key)
		return
	}
	v.items[ev.Item.Key] = string(ev.Item.Value)
}

func (v *view) get(key string) (string, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	value, ok := v.items[key]
	return value, ok
}

// waitUntil polls cond until it holds, failing the test after patience.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, patience)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// putFollowed writes key through s and waits until f applied it to v.
func putFollowed(t *testing.T, s store.Store, f *store.Follower, v *view, key string) {
	t.Helper()
	it, err := s.Put(t.Context(), store.Item{Key: key, Value: []byte(key)})
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), patience)
	defer cancel()
	if err := f.WaitFor(ctx, it.Revision); err != nil {
		t.Fatalf("follower did not reach revision %d: %v", it.Revision, err)
	}
	if value, ok := v.get(key); !ok || value != key {
		t.Fatalf("follower view has %q = %q, %t; want %q", key, value, ok, key)
	}
}

// TestTotalLoss stops every member: requests fail with ErrUnavailable
// instead of hanging, and once the members are back on their data the
// store works again and a follower recovers by itself.
func TestTotalLoss(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, t.TempDir(), 3)
	s := openStore(t, c.Endpoints(), etcd.Config{RequestTimeout: 2 * time.Second})
	ctx := t.Context()
	v := &view{}
	f, err := store.Follow(ctx, s, "f/", v)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	putFollowed(t, s, f, v, "f/before")

	c.Stop()
	unavailable := map[string]func() error{
		"Ping": func() error { return s.Ping(ctx) },
		"Get":  func() error { _, err := s.Get(ctx, "f/before"); return err },
		"Put":  func() error { _, err := s.Put(ctx, store.Item{Key: "f/during"}); return err },
		"Update": func() error {
			_, err := s.Update(ctx, "f/before", func(cur *store.Item) (*store.Item, error) { return cur, nil })
			return err
		},
		"Watch": func() error { _, err := s.Watch(ctx, "f/", 1); return err },
	}
	var wg sync.WaitGroup
	for op, fn := range unavailable {
		wg.Go(func() {
			if err := fn(); !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("%s with every member down: err = %v, want ErrUnavailable", op, err)
			}
		})
	}
	wg.Wait()
	waitUntil(t, "follower unhealthy", func() bool { return !f.Healthy() })

	c.Restart()
	waitUntil(t, "store reachable", func() bool { return s.Ping(ctx) == nil })
	waitUntil(t, "follower healthy", f.Healthy)
	putFollowed(t, s, f, v, "f/after")
	if value, ok := v.get("f/before"); !ok || value != "f/before" {
		t.Fatalf("follower lost f/before: %q, %t", value, ok)
	}
}

// compactingStore compacts the cluster right after its first listing, so
// that a watch from the listed revision finds it compacted.
type compactingStore struct {
	*etcd.Store
	t    *testing.T
	raw  *clientv3.Client
	once sync.Once
}

func (c *compactingStore) List(ctx context.Context, prefix string) ([]store.Item, int64, error) {
	items, rev, err := c.Store.List(ctx, prefix)
	c.once.Do(func() {
		for i := range 3 {
			if _, err := c.Store.Put(ctx, store.Item{Key: fmt.Sprintf("c/missed/%d", i)}); err != nil {
				c.t.Error(err)
			}
		}
		compact(c.t, c.raw)
	})
	return items, rev, err
}

// compact compacts the cluster up to its current revision.
func compact(t *testing.T, raw *clientv3.Client) int64 {
	t.Helper()
	resp, err := raw.Get(t.Context(), "any")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Compact(t.Context(), resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

func TestCompaction(t *testing.T) {
	c := etcdtest.Start(t, t.TempDir(), 1)
	raw := rawClient(t, c)

	t.Run("watch", func(t *testing.T) {
		s := openStore(t, c.Endpoints(), etcd.Config{})
		first, err := s.Put(t.Context(), store.Item{Key: "k", Value: []byte("1")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(t.Context(), store.Item{Key: "k", Value: []byte("2")}); err != nil {
			t.Fatal(err)
		}
		compact(t, raw)
		w, err := s.Watch(t.Context(), "", first.Revision)
		if errors.Is(err, store.ErrCompacted) {
			return
		}
		if err != nil {
			t.Fatalf("Watch from a compacted revision: err = %v, want ErrCompacted", err)
		}
		for range w.Events() {
			t.Error("event from a compacted revision")
		}
		if !errors.Is(w.Err(), store.ErrCompacted) {
			t.Fatalf("watcher Err = %v, want ErrCompacted", w.Err())
		}
	})

	t.Run("follow", func(t *testing.T) {
		s := &compactingStore{Store: openStore(t, c.Endpoints(), etcd.Config{}), t: t, raw: raw}
		if _, err := s.Put(t.Context(), store.Item{Key: "c/listed", Value: []byte("c/listed")}); err != nil {
			t.Fatal(err)
		}
		v := &view{}
		f, err := store.Follow(t.Context(), s, "c/", v)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Stop()
		waitUntil(t, "follower re-listed the missed changes", func() bool {
			_, ok := v.get("c/missed/2")
			return ok
		})
		putFollowed(t, s, f, v, "c/after")
	})
}

func BenchmarkCAS(b *testing.B) {
	c := etcdtest.Start(b, b.TempDir(), 1)
	s := openStore(b, c.Endpoints(), etcd.Config{})
	const keys = 4
	var writers atomic.Int64
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		key := fmt.Sprintf("counter/%d", writers.Add(1)%keys)
		for pb.Next() {
			_, err := s.Update(context.Background(), key, func(cur *store.Item) (*store.Item, error) {
				n := 0
				if cur != nil {
					n = len(cur.Value)
				}
				return &store.Item{Key: key, Value: make([]byte, n%64+1)}, nil
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}
