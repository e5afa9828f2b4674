package ccmessaging

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/term"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/etcd"
	"github.com/gatehouse/gatehouse/internal/store/etcd/etcdtest"
)

// BenchmarkEtcdScale measures the session table on etcd at scale (the
// figures of docs/scale.md, "On etcd"): it starts an in-process cluster,
// writes sessions of the scale scenario's shape through the store with 64
// writers, lists them back into a session table as a replica starting up
// does, and times a watch that starts a bounded backlog behind the head.
// The sizes come from the environment:
//
//	GATEHOUSE_BENCH_SESSIONS  sessions written (default 100 000)
//	GATEHOUSE_BENCH_BACKLOG   changes the watch starts behind (default 10 000)
//	GATEHOUSE_BENCH_MEMBERS   etcd members (default 3)
//
// One run takes minutes, so its body runs once whatever b.N: run it with
//
//	go test -run XXX -bench BenchmarkEtcdScale -benchtime 1x -timeout 30m ./internal/ccmessaging/
//
// (further b.Loop iterations, under -benchtime Nx, do nothing).
func BenchmarkEtcdScale(b *testing.B) {
	cfg := etcdScaleConfig{
		sessions: envInt(b, "GATEHOUSE_BENCH_SESSIONS", 100_000),
		backlog:  envInt(b, "GATEHOUSE_BENCH_BACKLOG", 10_000),
		members:  envInt(b, "GATEHOUSE_BENCH_MEMBERS", 3),
		writers:  64,
	}
	var m map[string]float64
	for i := 0; b.Loop(); i++ {
		if i == 0 {
			m = measureEtcdScale(b, cfg)
		}
	}
	for unit, v := range m {
		b.ReportMetric(v, unit)
	}
}

type etcdScaleConfig struct {
	sessions, backlog, members, writers int
}

// measureEtcdScale runs the scenario once and returns its figures by
// metric unit.
func measureEtcdScale(b *testing.B, cfg etcdScaleConfig) map[string]float64 {
	m := map[string]float64{}
	dir := b.TempDir()
	c := etcdtest.Start(b, dir, cfg.members)
	ctx := context.Background()
	open := func() *etcd.Store {
		st, err := etcd.Open(ctx, etcd.Config{Endpoints: c.Endpoints()})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() }) // before the cluster stops
		return st
	}
	p := newProgress()
	defer p.done()

	// Seed: 64 writers, one Put of a new session each.
	st := open()
	now := time.Now()
	ch := "123456789012345678"
	appKey, chUID := uuid.NewString(), uuid.NewString()
	var next, written atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	t0 := time.Now()
	for range cfg.writers {
		wg.Go(func() {
			for !failed.Load() {
				i := next.Add(1)
				if i > int64(cfg.sessions) {
					return
				}
				rec := sessionRecord{ID: uuid.NewString(), Channel: ch, ChannelUID: chUID, User: fmt.Sprintf("k3j5x9qa%d-u", i),
					UserName: "Bench User", Locale: "en", AppKey: appKey, Gen: 1, Issued: now.Unix(), Exp: now.Add(time.Hour).Unix(),
					Created: now.UnixMilli(), LastActivity: now.UnixMilli(), MaxEnd: now.Add(24 * time.Hour).UnixMilli(), AppEpoch: 1, Grant: 1}
				item := store.Item{Key: sessionKey(ch, rec.User), Value: encodeSession(&rec),
					Expires: now.Add(24*time.Hour + time.Duration(i%1800)*time.Second)}
				if _, err := st.Put(ctx, item); err != nil {
					b.Error(err)
					failed.Store(true)
					return
				}
				if n := written.Add(1); n%1000 == 0 {
					p.show("seeded %d of %d sessions in %s", n, cfg.sessions, time.Since(t0).Round(time.Second))
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() {
		b.FailNow()
	}
	seed := time.Since(t0)
	m["seed-writes/s"] = float64(cfg.sessions) / seed.Seconds()
	b.Logf("seeded %d sessions with %d writers in %s (%.0f/s)", cfg.sessions, cfg.writers, seed.Round(time.Millisecond), m["seed-writes/s"])

	// A replica starting up: a fresh store lists the sessions and loads
	// them into a session table.
	st2 := open()
	h0 := heapInUse()
	t1 := time.Now()
	items, head, err := st2.List(ctx, sessionPrefix)
	if err != nil {
		b.Fatal(err)
	}
	tList := time.Since(t1)
	mint := minter{key: []byte("0123456789abcdef0123456789abcdef")}
	table := newSessionTable(mint)
	table.Reset(items)
	tLoad := time.Since(t1)
	var last int64 // the revision of the latest session change
	for _, it := range items {
		last = max(last, it.Revision)
	}
	items = nil
	if got := table.set.len(); got != cfg.sessions {
		b.Fatalf("session table holds %d sessions, want %d", got, cfg.sessions)
	}
	heap := float64(heapInUse()) - float64(h0)
	runtime.KeepAlive(table)
	m["list-s"] = tList.Seconds()
	m["list+reset-s"] = tLoad.Seconds()
	m["table-heap-B/session"] = heap / float64(cfg.sessions)
	b.Logf("listed %d sessions in %s, list and session table %s, table heap %.0f B/session, head revision %d",
		cfg.sessions, tList.Round(time.Millisecond), tLoad.Round(time.Millisecond), m["table-heap-B/session"], head)

	// Watch catch-up: a watch that starts backlog changes behind the
	// latest (each session was one change), read as fast as it delivers,
	// then the same backlog applied to a session table, as a replica's
	// follower does.
	backlog := min(cfg.backlog, cfg.sessions)
	from := last - int64(backlog) + 1
	events, tWatch := catchUp(b, p, st2, from, last, func(store.Event) {})
	m["backlog-events"] = float64(events)
	m["catchup-s"] = tWatch.Seconds()
	m["catchup-events/s"] = float64(events) / tWatch.Seconds()
	b.Logf("watch from %d changes behind: %d events in %s (%.0f/s)", backlog, events, tWatch.Round(time.Millisecond), m["catchup-events/s"])
	table2 := newSessionTable(mint)
	events2, tApply := catchUp(b, p, st2, from, last, table2.Apply)
	m["catchup-table-s"] = tApply.Seconds()
	m["catchup-table-events/s"] = float64(events2) / tApply.Seconds()
	b.Logf("the same into a session table: %d events in %s", events2, tApply.Round(time.Millisecond))

	// Disk, last: the members commit their database files every 100 ms,
	// long past by now.
	db, wal := filesSize(b, dir, func(p string) bool { return filepath.Base(p) == "db" && filepath.Base(filepath.Dir(p)) == "snap" }),
		filesSize(b, dir, func(p string) bool { return filepath.Ext(p) == ".wal" })
	m["db-B/session/member"] = float64(db) / float64(cfg.members) / float64(cfg.sessions)
	m["wal-B/member"] = float64(wal) / float64(cfg.members)
	b.Logf("member/snap/db: %d bytes in all (%.0f B per session per member); WAL: %d bytes in all", db, m["db-B/session/member"], wal)
	return m
}

// catchUp watches the sessions from revision from and passes every event
// to apply until the one at revision last; it returns how many events
// came and how long that took.
func catchUp(b *testing.B, p *progress, st *etcd.Store, from, last int64, apply func(store.Event)) (int, time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t0 := time.Now()
	w, err := st.Watch(ctx, sessionPrefix, from)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for ev := range w.Events() {
		apply(ev)
		n++
		if n%1000 == 0 {
			p.show("watch catch-up: %d events in %s", n, time.Since(t0).Round(time.Second))
		}
		if ev.Item.Revision >= last {
			return n, time.Since(t0)
		}
	}
	b.Fatalf("watch ended after %d events: %v", n, w.Err())
	return 0, 0
}

// filesSize returns the total size of the files under root that match.
func filesSize(b *testing.B, root string, match func(path string) bool) int64 {
	var total int64
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !fi.IsDir() && match(p) {
			total += fi.Size()
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return total
}

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// progress keeps one progress line on stderr, at most once a second, when
// stderr is a terminal; otherwise it shows nothing.
type progress struct {
	on    bool
	mu    sync.Mutex
	last  time.Time
	shown bool
}

func newProgress() *progress {
	return &progress{on: term.IsTerminal(int(os.Stderr.Fd()))}
}

func (p *progress) show(format string, args ...any) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last) < time.Second {
		return
	}
	p.last, p.shown = time.Now(), true
	fmt.Fprintf(os.Stderr, "\r\033[K"+format, args...)
}

func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
}
