package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ScaleResult is the outcome of the scale scenario: an in-process server
// restarted with Sessions live sessions on disk, its resident memory once
// ready (which the memory target applies to) and after the session load
// (which adds the heap's growth between collections), the time from start
// to ready, and the session scenario's throughput compared with the same
// run on BaselineSessions sessions.
type ScaleResult struct {
	Sessions       int     `json:"sessions"`
	SeedS          float64 `json:"seed_s"`
	RSSReadyBytes  uint64  `json:"rss_ready_bytes"`
	RSSLoadedBytes uint64  `json:"rss_loaded_bytes"`
	// The resident memory once ready and after the load split into
	// anonymous memory (the Go heap, stacks, the runtime) and file-backed
	// pages (the bolt file's map, the binary): RssAnon and RssFile of
	// /proc/self/status.
	RSSAnonReadyBytes  uint64 `json:"rss_anon_ready_bytes"`
	RSSFileReadyBytes  uint64 `json:"rss_file_ready_bytes"`
	RSSAnonLoadedBytes uint64 `json:"rss_anon_loaded_bytes"`
	RSSFileLoadedBytes uint64 `json:"rss_file_loaded_bytes"`
	// HeapBytes is the live Go heap once ready; StoreFileBytes the size of
	// the bolt file, whose pages the start-up load maps into memory.
	HeapBytes uint64 `json:"heap_bytes"`
	// HeapGoalLoadedBytes is the garbage collector's heap goal at the end
	// of the load: the Go heap grows towards it between collections.
	HeapGoalLoadedBytes uint64 `json:"heap_goal_loaded_bytes"`
	StoreFileBytes      uint64 `json:"store_file_bytes"`
	MemoryTargetBytes   uint64 `json:"memory_target_bytes"`
	// MemoryMet reports whether resident memory was within the target
	// both once ready and after the load.
	MemoryMet bool    `json:"memory_met"`
	RestartS  float64 `json:"restart_s"`
	// RestartsS are the times to ready of every restart with Sessions
	// sessions (--restarts), the first being RestartS, and
	// RSSReadyRestartsBytes the resident memory once ready of each.
	RestartsS             []float64 `json:"restarts_s"`
	RSSReadyRestartsBytes []uint64  `json:"rss_ready_restarts_bytes"`
	RestartTargetS        float64   `json:"restart_target_s"`
	RestartMet            bool      `json:"restart_met"`
	SessionRPS            float64   `json:"session_rps"`
	SessionErrors         uint64    `json:"session_errors"`
	// SessionCPUUs and BaselineCPUUs are the CPU time per request of the
	// two session runs, in µs: unlike throughput, they do not depend on
	// what else the machine runs.
	SessionCPUUs  float64 `json:"session_cpu_us"`
	BaselineCPUUs float64 `json:"baseline_cpu_us"`
	// SessionWarmUpS and BaselineWarmUpS are how long each session run was
	// preceded by unmeasured load, until the heap reached its goal (see
	// driver.warmUp).
	SessionWarmUpS  float64 `json:"session_warm_up_s"`
	BaselineWarmUpS float64 `json:"baseline_warm_up_s"`
	// SessionGCShare and BaselineGCShare are the garbage collector's share
	// of the CPU time of the two session runs.
	SessionGCShare   float64 `json:"session_gc_share"`
	BaselineGCShare  float64 `json:"baseline_gc_share"`
	BaselineSessions int     `json:"baseline_sessions"`
	BaselineRPS      float64 `json:"baseline_rps"`
	BaselineErrors   uint64  `json:"baseline_errors"`
	Ratio            float64 `json:"ratio"`
	RatioTarget      float64 `json:"ratio_target"`
	ThroughputMet    bool    `json:"throughput_met"`
}

// Targets of the scale scenario.
const (
	baselineSessions  = 1000
	scaleRestartLimit = 5 * time.Second
	scaleRatioTarget  = 0.90
	// memoryPerMillion is the resident memory allowed per million sessions.
	memoryPerMillion = 1 << 30
	// storeFile is the file server.Start keeps its bolt store in, within
	// its data directory.
	storeFile = "gatehouse.db"
	// maxWarmUp bounds the unmeasured load before each session run.
	maxWarmUp = 30 * time.Second
)

// scaleStore is a data directory seeded for the scale scenario.
type scaleStore struct {
	dir, rootPassword string
	sessions          int
	seeded            *seeded
	seed              time.Duration
}

// scaleRun is what one restart of a seeded store measured.
type scaleRun struct {
	restart           time.Duration
	rssReady, rssLoad resident
	heap, file        uint64
	heapGoal          uint64
	warmUp            time.Duration
	load              *measured
}

// scale seeds a store with baselineSessions and one with cfg.Sessions,
// then restarts a server on each in turn and runs the session load: the
// two measurements follow each other closely, so that what else the
// machine runs changes little between them.
func (r *runner) scale(ctx context.Context) (_ *ScaleResult, err error) {
	var stores []*scaleStore
	defer func() {
		for _, st := range stores {
			err = errors.Join(err, os.RemoveAll(st.dir))
		}
	}()
	var runs []*scaleRun
	for _, n := range []int{baselineSessions, r.cfg.Sessions} {
		st, err := r.seedStore(ctx, n)
		if st != nil {
			stores = append(stores, st)
		}
		if err != nil {
			return nil, fmt.Errorf("seeding %d sessions: %w", n, err)
		}
	}
	for _, st := range stores {
		run, err := r.restart(ctx, st)
		if err != nil {
			return nil, fmt.Errorf("%d sessions: %w", st.sessions, err)
		}
		runs = append(runs, run)
	}
	base, big := runs[0], runs[1]
	restarts := []float64{big.restart.Seconds()}
	rssRestarts := []uint64{big.rssReady.total}
	for range r.cfg.Restarts - 1 {
		d, rss, err := r.restartOnly(ctx, stores[1])
		if err != nil {
			return nil, fmt.Errorf("%d sessions: %w", stores[1].sessions, err)
		}
		restarts, rssRestarts = append(restarts, d.Seconds()), append(rssRestarts, rss.total)
	}
	s := &ScaleResult{
		Sessions: r.cfg.Sessions, SeedS: stores[1].seed.Seconds(),
		RSSReadyBytes: big.rssReady.total, RSSLoadedBytes: big.rssLoad.total, HeapBytes: big.heap, StoreFileBytes: big.file,
		HeapGoalLoadedBytes: big.heapGoal,
		RSSAnonReadyBytes:   big.rssReady.anon, RSSFileReadyBytes: big.rssReady.file,
		RSSAnonLoadedBytes: big.rssLoad.anon, RSSFileLoadedBytes: big.rssLoad.file,
		MemoryTargetBytes: uint64(memoryPerMillion * max(1, float64(r.cfg.Sessions)/1e6)),
		RestartS:          big.restart.Seconds(), RestartTargetS: scaleRestartLimit.Seconds(),
		RestartsS: restarts, RSSReadyRestartsBytes: rssRestarts,
		SessionRPS: big.load.rps(), SessionErrors: big.load.errors, SessionGCShare: big.load.gcShare(),
		SessionCPUUs:   us(big.load.cpuPerRequest()),
		SessionWarmUpS: big.warmUp.Seconds(), BaselineWarmUpS: base.warmUp.Seconds(),
		BaselineSessions: baselineSessions, BaselineRPS: base.load.rps(), BaselineErrors: base.load.errors,
		BaselineGCShare: base.load.gcShare(), BaselineCPUUs: us(base.load.cpuPerRequest()),
		RatioTarget: scaleRatioTarget,
	}
	s.MemoryMet = s.RSSReadyBytes > 0 && s.RSSReadyBytes <= s.MemoryTargetBytes &&
		s.RSSLoadedBytes > 0 && s.RSSLoadedBytes <= s.MemoryTargetBytes
	s.RestartMet = slices.Max(restarts) <= scaleRestartLimit.Seconds()
	if s.BaselineRPS > 0 {
		s.Ratio = s.SessionRPS / s.BaselineRPS
	}
	s.ThroughputMet = s.Ratio >= scaleRatioTarget && s.SessionErrors+s.BaselineErrors == 0
	return s, nil
}

// seedStore starts a server on a new data directory and opens n
// sessions on it through the HTTP API, as an operator's clients would,
// keeping a sample of their tokens; then it stops the server.
func (r *runner) seedStore(ctx context.Context, n int) (_ *scaleStore, err error) {
	dir, err := os.MkdirTemp("", "gatehouse-bench-scale-")
	if err != nil {
		return nil, err
	}
	st := &scaleStore{dir: dir, rootPassword: newPassword(), sessions: n}
	t, err := startServer(ctx, r.warn, r.d.client(), dir, st.rootPassword, nil)
	if err != nil {
		return st, err
	}
	defer func() { err = errors.Join(err, t.stop()) }()
	t0 := time.Now()
	tokens, err := t.sampleSessions(ctx, "u", n, max(n/baselineSessions, 1), r.cfg.Connections, r.cfg.Progress)
	st.seed = time.Since(t0)
	if err != nil {
		return st, err
	}
	st.seeded = &seeded{app: *t.app, tokens: tokens}
	return st, nil
}

// restart starts a server on a seeded store, measuring the time until it
// is ready and its memory, runs the session load over a sample of the
// sessions and stops it.
func (r *runner) restart(ctx context.Context, st *scaleStore) (_ *scaleRun, err error) {
	freeMemory()
	run := &scaleRun{}
	t0 := time.Now()
	t, err := startServer(ctx, r.warn, r.d.client(), st.dir, st.rootPassword, nil)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, t.stop()) }()
	if err := waitReady(ctx, t); err != nil {
		return nil, err
	}
	run.restart = time.Since(t0)
	run.heap = freeMemory()
	run.rssReady = residentBytes()
	if fi, err := os.Stat(filepath.Join(st.dir, storeFile)); err == nil {
		run.file = uint64(fi.Size())
	}
	name := "scale-" + strconv.Itoa(st.sessions)
	if err := r.d.heapProfile(name); err != nil {
		return nil, err
	}
	p, err := sessionPlan(t.api.base, st.seeded.app, st.seeded.tokens, r.cfg.Connections, false, statusOK)
	if err != nil {
		return nil, err
	}
	if run.warmUp, err = r.d.warmUp(ctx, p, maxWarmUp); err != nil {
		return nil, err
	}
	if run.load, _, err = r.d.run(ctx, name, p, nil); err != nil {
		return nil, err
	}
	run.rssLoad = residentBytes()
	run.heapGoal = heapGoal()
	if err := r.d.heapProfile(name + "-loaded"); err != nil {
		return nil, err
	}
	r.d.close()
	return run, nil
}

// restartOnly starts a server on a seeded store, measuring the time until
// it is ready and its memory then (with a CPU profile of the start, if
// profiles are wanted), and stops it.
func (r *runner) restartOnly(ctx context.Context, st *scaleStore) (_ time.Duration, _ resident, err error) {
	freeMemory()
	stopProfile, err := r.d.startProfile("scale-" + strconv.Itoa(st.sessions) + "-restart")
	if err != nil {
		return 0, resident{}, err
	}
	t0 := time.Now()
	t, err := startServer(ctx, r.warn, r.d.client(), st.dir, st.rootPassword, nil)
	if err != nil {
		return 0, resident{}, errors.Join(err, stopProfile())
	}
	defer func() { err = errors.Join(err, t.stop()) }()
	err = waitReady(ctx, t)
	d := time.Since(t0)
	if err = errors.Join(err, stopProfile()); err != nil {
		return 0, resident{}, err
	}
	freeMemory()
	return d, residentBytes(), nil
}

// seeded is what seedStore opened: the app and a sample of the tokens.
type seeded struct {
	app    app
	tokens []string
}

// waitReady polls GET /readyz until it answers 200.
func waitReady(ctx context.Context, t *target) error {
	for {
		if _, err := t.api.call(ctx, http.MethodGet, "/readyz", nil, nil, nil); err == nil {
			return nil
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
}

// freeMemory collects garbage and returns free memory to the system, so
// that resident memory reflects what is live, and returns the live heap.
func freeMemory() uint64 {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// heapGoal returns the garbage collector's current heap goal.
func heapGoal() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// resident is the process's resident memory: its total (VmRSS), and
// its anonymous (RssAnon) and file-backed (RssFile) parts.
type resident struct{ total, anon, file uint64 }

// residentBytes returns the process's resident memory, read from
// /proc/self/status, or zeros where /proc is not available.
func residentBytes() resident {
	var r resident
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return r
	}
	defer f.Close()
	fields := map[string]*uint64{"VmRSS:": &r.total, "RssAnon:": &r.anon, "RssFile:": &r.file}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, _ := strings.Cut(sc.Text(), "\t")
		if p, ok := fields[name]; ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				*p = kb << 10
			}
		}
	}
	return r
}
