package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// call is one request, built once and sent many times.
type call struct {
	proto *http.Request // method, URL, headers; never sent itself
	body  []byte
}

// newCall prepares a request to url; body nil sends none.
func newCall(method, url string, header http.Header, body []byte) (*call, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return &call{proto: req, body: body}, nil
}

// request returns a fresh request of c. It shares c's URL and header map,
// which the transport only reads.
func (c *call) request() *http.Request {
	r := *c.proto
	if c.body != nil {
		r.Body = io.NopCloser(bytes.NewReader(c.body))
		r.ContentLength = int64(len(c.body))
	}
	return &r
}

// A source yields the requests of one worker; false means the worker has
// nothing more to send.
type source func() (*http.Request, bool)

// cycle sends calls in turn, forever.
func cycle(calls []*call) source {
	i := 0
	return func() (*http.Request, bool) {
		c := calls[i%len(calls)]
		i++
		return c.request(), true
	}
}

// checker says why a response is an error, or returns "" when it is not.
type checker func(*http.Response) string

// statusOK accepts 200 answers only.
func statusOK(resp *http.Response) string {
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("status %d", resp.StatusCode)
	}
	return ""
}

// driver sends load over one shared keep-alive transport.
type driver struct {
	tr          *http.Transport
	connections int
	duration    time.Duration
	progress    io.Writer // nil: no progress line
	profileDir  string    // where each run's CPU profile goes; empty: none
}

func newDriver(connections int, duration time.Duration, progress io.Writer, profileDir string) *driver {
	return &driver{
		tr: &http.Transport{
			MaxIdleConns:        connections,
			MaxIdleConnsPerHost: connections,
			MaxConnsPerHost:     connections,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
		connections: connections,
		duration:    duration,
		progress:    progress,
		profileDir:  profileDir,
	}
}

// client is an http.Client over the driver's transport, for seeding.
func (d *driver) client() *http.Client { return &http.Client{Transport: d.tr, Timeout: time.Minute} }

// close drops the idle connections.
func (d *driver) close() { d.tr.CloseIdleConnections() }

// measured is the outcome of one load run.
type measured struct {
	requests, errors uint64
	elapsed          time.Duration
	cpu              time.Duration // process CPU time used meanwhile
	gcCPU            time.Duration // of which the garbage collector's
	hist             histogram
	errSample        string
}

// cpuPerRequest is the process CPU time per request, load generator
// included: unlike throughput, it does not depend on what else the machine
// runs.
func (m *measured) cpuPerRequest() time.Duration {
	if m.requests == 0 {
		return 0
	}
	return m.cpu / time.Duration(m.requests)
}

// gcShare is the garbage collector's share of the CPU time used.
func (m *measured) gcShare() float64 {
	if m.cpu <= 0 {
		return 0
	}
	return float64(m.gcCPU) / float64(m.cpu)
}

func (m *measured) rps() float64 {
	if m.elapsed <= 0 {
		return 0
	}
	return float64(m.requests) / m.elapsed.Seconds()
}

// worker is the state of one load goroutine.
type worker struct {
	done, errs atomic.Uint64
	hist       histogram
	errSample  string
	finished   time.Time
	exhausted  bool // its source has nothing more to send
}

// pairedSlices is how many slices a paired run alternates.
const pairedSlices = 5

// run measures p for the driver's duration. With a pair (the floor on the
// same server), it measures both in alternating slices of equal length,
// so that both see the same conditions on a machine whose other load
// varies, and returns both measurements. A run ends early when every
// source of p is exhausted.
func (d *driver) run(ctx context.Context, name string, p, pair *plan) (m, pm *measured, err error) {
	for _, q := range []*plan{p, pair} {
		if q == nil {
			continue
		}
		if err := d.prime(ctx, q.warm, len(q.sources)); err != nil {
			return nil, nil, fmt.Errorf("%s: opening connections: %w", name, err)
		}
	}
	stopProfile, err := d.startProfile(name)
	if err != nil {
		return nil, nil, err
	}
	m, pm = &measured{}, &measured{}
	slices := 1
	if pair != nil {
		slices = pairedSlices
	}
	slice := d.duration / time.Duration(slices)
	prog := d.showProgress(name)
	for range slices {
		if pair != nil {
			d.slice(ctx, pair, slice, pm, nil)
		}
		if d.slice(ctx, p, slice, m, prog) || ctx.Err() != nil {
			break
		}
	}
	prog.stop()
	if err := stopProfile(); err != nil {
		return nil, nil, err
	}
	if pair == nil {
		pm = nil
	}
	return m, pm, ctx.Err()
}

// slice drives one worker per source of p for dur (or until every source
// is exhausted, which it reports), adding what it measured to m.
func (d *driver) slice(ctx context.Context, p *plan, dur time.Duration, m *measured, prog *progress) (exhausted bool) {
	workers := make([]*worker, len(p.sources))
	for i := range workers {
		workers[i] = new(worker)
	}
	prog.watch(workers)
	cpu0, gc0 := processCPU(), gcCPU()
	start := time.Now()
	end := start.Add(dur)
	var wg sync.WaitGroup
	for i, src := range p.sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.work(ctx, workers[i], src, p.check, end)
		}()
	}
	wg.Wait()
	m.cpu += processCPU() - cpu0
	m.gcCPU += gcCPU() - gc0
	last, exhausted := start, true
	for _, w := range workers {
		m.requests += w.done.Load()
		m.errors += w.errs.Load()
		m.hist.merge(&w.hist)
		if m.errSample == "" {
			m.errSample = w.errSample
		}
		last = later(last, w.finished)
		exhausted = exhausted && w.exhausted
	}
	m.elapsed += last.Sub(start)
	prog.add(workers)
	return exhausted
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// gcCycles is the number of garbage collections completed.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// warmUp drives p, unmeasured, until a garbage collection has completed
// under it, or for at most limit, and returns how long it ran. A server
// just started has a heap below its goal (the live heap plus the
// collector's headroom): until the heap reaches it, every allocation is
// served from memory new to the process, which the kernel must fault in
// and the runtime initialise, a cost a server that has run for a while
// no longer pays. The larger the live heap, the longer that lasts: with a
// million sessions the first 5 s of load never reached the goal.
func (d *driver) warmUp(ctx context.Context, p *plan, limit time.Duration) (time.Duration, error) {
	start, cycles := time.Now(), gcCycles()
	for gcCycles() == cycles && time.Since(start) < limit && ctx.Err() == nil {
		if d.slice(ctx, p, time.Second, &measured{}, nil) {
			break
		}
	}
	return time.Since(start), ctx.Err()
}

// gcCPU returns the CPU time the garbage collector has used (an estimate
// of the runtime's).
func gcCPU() time.Duration {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64 {
		return 0
	}
	return time.Duration(s[0].Value.Float64() * float64(time.Second))
}

// startProfile starts a CPU profile of the run called name, if profiles
// are wanted, and returns the function that ends and writes it.
func (d *driver) startProfile(name string) (stop func() error, err error) {
	if d.profileDir == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(filepath.Join(d.profileDir, strings.ReplaceAll(name, " ", "-")+".pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, errors.Join(err, f.Close())
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// heapProfile writes a heap profile named name, if profiles are wanted.
func (d *driver) heapProfile(name string) error {
	if d.profileDir == "" {
		return nil
	}
	f, err := os.Create(filepath.Join(d.profileDir, name+"-heap.pprof"))
	if err != nil {
		return err
	}
	return errors.Join(pprof.WriteHeapProfile(f), f.Close())
}

// work sends the requests of src until end.
func (d *driver) work(ctx context.Context, w *worker, src source, check checker, end time.Time) {
	buf := make([]byte, 32<<10)
	for ctx.Err() == nil {
		t0 := time.Now()
		if !t0.Before(end) {
			break
		}
		req, ok := src()
		if !ok {
			w.exhausted = true
			break
		}
		why := d.send(req, check, buf)
		w.hist.record(time.Since(t0))
		if why != "" {
			if w.errSample == "" {
				w.errSample = why
			}
			w.errs.Add(1)
		}
		w.done.Add(1)
	}
	w.finished = time.Now()
}

// send makes one request, reads the answer fully and checks it.
func (d *driver) send(req *http.Request, check checker, buf []byte) string {
	resp, err := d.tr.RoundTrip(req)
	if err != nil {
		return err.Error()
	}
	_, err = io.CopyBuffer(io.Discard, resp.Body, buf)
	resp.Body.Close()
	if err != nil {
		return err.Error()
	}
	return check(resp)
}

// prime sends warm on n connections at once, so that connection set-up is
// not measured.
func (d *driver) prime(ctx context.Context, warm *call, n int) error {
	errs := make(chan string, n)
	buf := make([]byte, 4<<10)
	for range n {
		go func() {
			errs <- d.send(warm.request().WithContext(ctx), statusOK, bytes.Clone(buf))
		}()
	}
	for range n {
		if why := <-errs; why != "" {
			return fmt.Errorf("%s", why)
		}
	}
	return nil
}

// progress prints a line every half second while a run goes on: the
// requests and errors of its finished slices plus those of the current.
type progress struct {
	d       *driver
	name    string
	start   time.Time
	mu      sync.Mutex
	n, e    uint64    // of finished slices
	current []*worker // of the slice running
	done    chan struct{}
	stopped chan struct{}
}

// showProgress starts printing the progress of the run called name; it
// returns nil, which every progress method accepts, when there is nowhere
// to print.
func (d *driver) showProgress(name string) *progress {
	if d.progress == nil {
		return nil
	}
	p := &progress{d: d, name: name, start: time.Now(), done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(p.stopped)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				p.line()
				fmt.Fprintln(d.progress)
				return
			case <-t.C:
				p.line()
			}
		}
	}()
	return p
}

// watch makes workers the current slice's.
func (p *progress) watch(workers []*worker) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.current = workers
	p.mu.Unlock()
}

// add counts a finished slice's workers.
func (p *progress) add(workers []*worker) {
	if p == nil {
		return
	}
	p.mu.Lock()
	for _, w := range workers {
		p.n += w.done.Load()
		p.e += w.errs.Load()
	}
	p.current = nil
	p.mu.Unlock()
}

func (p *progress) line() {
	p.mu.Lock()
	n, e := p.n, p.e
	for _, w := range p.current {
		n += w.done.Load()
		e += w.errs.Load()
	}
	p.mu.Unlock()
	fmt.Fprintf(p.d.progress, "\r%-8s %5.1fs %9d requests %6d errors ", p.name, time.Since(p.start).Seconds(), n, e)
}

// stop prints the last line.
func (p *progress) stop() {
	if p == nil {
		return
	}
	close(p.done)
	<-p.stopped
}
