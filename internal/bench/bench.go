// Package bench is Gatehouse's benchmark instrument. It drives load over
// real HTTP connections at a Gatehouse server — one it starts in-process
// on a fresh data directory, or a running one — scenario by scenario, and
// reports requests, errors, throughput, latency percentiles and CPU time
// per request. Because the load generator shares the machine with the
// server, each scenario's throughput is reported as a ratio: to the floor
// (GET /healthz through the same server and middleware, measured in slices
// alternating with the scenario's, so that both see the same machine) or,
// for logins, to the most logins the machine's cores could serve doing
// nothing but their cryptography. The scale scenario opens many sessions
// and reports memory, restart time and throughput with them live.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"time"
)

// Scenario names.
const (
	Floor   = "floor"   // GET /healthz: what serving HTTP costs
	Verify  = "verify"  // GET /v4/self-perms with an engine token
	Login   = "login"   // POST /v4/token over many accounts
	Fabric  = "fabric"  // POST tokenByAkSk
	Apply   = "apply"   // POST applyToken, a new user each time
	Session = "session" // GET /apiaccess/ccmessaging/session
	Renew   = "renew"   // the same with just-expired tokens
	Scale   = "scale"   // many live sessions: memory, restart, throughput
)

// DefaultScenarios run when Config.Scenarios is empty, in this order. The
// scenarios share a server (renew has its own, stopped once it is done),
// so each runs with whatever the earlier ones left in memory: apply, which
// leaves a new session behind for every request, runs last, and login,
// whose garbage collections walk the whole heap, before the ccmessaging
// scenarios fill it with sessions.
var DefaultScenarios = []string{Floor, Verify, Login, Session, Renew, Fabric, Apply}

// Config says what to benchmark and how hard.
type Config struct {
	// Target is the base URL of a running server, RootPassword root's
	// password there. Empty starts servers in-process (with a generated
	// root password).
	Target       string
	RootPassword string
	// Duration is the measuring time of each scenario [5s]; Connections
	// the number of concurrent connections and workers [32].
	Duration    time.Duration
	Connections int
	// Scenarios to run [DefaultScenarios]. Floor is added when another
	// scenario is compared with it.
	Scenarios []string
	// Sessions is the number of live sessions of the scale scenario [1000000].
	Sessions int
	// Restarts is how many times the scale scenario restarts the server on
	// its Sessions sessions [1]: the first restart is measured fully, the
	// others for their time to ready and memory once ready.
	Restarts int
	// Progress receives a progress line while a scenario runs; Log the
	// warnings of in-process servers. Nil discards them.
	Progress io.Writer
	Log      io.Writer
	// ProfileDir, when set, receives a CPU profile of each scenario's
	// measuring time, named <scenario>.pprof.
	ProfileDir string
}

func (c *Config) defaults() error {
	if c.Duration <= 0 {
		c.Duration = 5 * time.Second
	}
	if c.Connections <= 0 {
		c.Connections = 32
	}
	if c.Restarts <= 0 {
		c.Restarts = 1
	}
	if c.Sessions <= 0 {
		c.Sessions = 1_000_000
	}
	if len(c.Scenarios) == 0 {
		c.Scenarios = DefaultScenarios
	}
	for _, name := range c.Scenarios {
		if _, ok := scenarios[name]; !ok && name != Scale {
			return fmt.Errorf("unknown scenario %q (want %v or %s)", name, DefaultScenarios, Scale)
		}
	}
	if c.Target != "" && slices.Contains(c.Scenarios, Scale) {
		return errors.New("the scale scenario runs in-process only")
	}
	if c.Target != "" && c.RootPassword == "" {
		return errors.New("benchmarking a running server needs its root password")
	}
	return nil
}

// Report is the outcome of a run.
type Report struct {
	Date        time.Time `json:"date"`
	GoVersion   string    `json:"go_version"`
	Cores       int       `json:"cores"`
	Server      string    `json:"server"` // "in-process" or the target URL
	DurationS   float64   `json:"duration_s"`
	Connections int       `json:"connections"`
	// Crypto and LoginLimitRPS are set when the login scenario ran.
	Crypto        *CryptoFloor `json:"crypto,omitempty"`
	LoginLimitRPS float64      `json:"login_limit_rps,omitempty"`
	Scenarios     []Result     `json:"scenarios"`
	Scale         *ScaleResult `json:"scale,omitempty"`
}

// Result is the outcome of one scenario. Ratio is RPS over the floor's
// (over LoginLimitRPS for login); Met says whether Ratio reached Target
// without a single error, and without a warning logged by an in-process
// server (such as an audit record dropped under load).
type Result struct {
	Name     string  `json:"name"`
	Requests uint64  `json:"requests"`
	Errors   uint64  `json:"errors"`
	RPS      float64 `json:"rps"`
	P50Ms    float64 `json:"p50_ms"`
	P90Ms    float64 `json:"p90_ms"`
	P99Ms    float64 `json:"p99_ms"`
	// FloorRPS is the floor's throughput the ratio is taken to: measured
	// in slices alternating with this scenario's, on the same server
	// (the floor scenario's own when CPU profiles are taken).
	FloorRPS float64 `json:"floor_rps,omitempty"`
	// CPUUs is the CPU time of this process per request, in µs: the
	// server's and the load generator's for an in-process server.
	CPUUs float64 `json:"cpu_us"`
	// GCShare is the garbage collector's share of that CPU time.
	GCShare    float64 `json:"gc_share"`
	Ratio      float64 `json:"ratio"`
	RatioTo    string  `json:"ratio_to,omitempty"`
	Target     float64 `json:"target,omitempty"`
	Met        bool    `json:"met"`
	FirstError string  `json:"first_error,omitempty"`
	// Warnings counts the warnings in-process servers logged meanwhile.
	Warnings    uint64 `json:"warnings"`
	LastWarning string `json:"last_warning,omitempty"`
	Skipped     string `json:"skipped,omitempty"`
}

// scenario is what a scenario is compared with, and how well it must do.
type scenario struct {
	ratioTo string  // Floor or loginLimit
	target  float64 // minimum ratio
}

// loginLimit names what the login scenario is compared with.
const loginLimit = "login_limit_rps"

// scenarios holds every load scenario but scale.
var scenarios = map[string]scenario{
	Floor:   {},
	Verify:  {Floor, 0.80},
	Session: {Floor, 0.70},
	Renew:   {Floor, 0.40},
	Fabric:  {Floor, 0.50},
	Apply:   {Floor, 0.25},
	Login:   {loginLimit, 0.85},
}

// Run benchmarks the scenarios of cfg and reports the results.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if cfg.ProfileDir != "" {
		if err := os.MkdirAll(cfg.ProfileDir, 0o755); err != nil {
			return nil, fmt.Errorf("profile directory: %w", err)
		}
	}
	rep := &Report{
		Date: time.Now().UTC().Truncate(time.Second), GoVersion: runtime.Version(), Cores: runtime.NumCPU(),
		Server: cfg.Target, DurationS: cfg.Duration.Seconds(), Connections: cfg.Connections,
	}
	if rep.Server == "" {
		rep.Server = "in-process"
	}
	r := &runner{cfg: cfg, d: newDriver(cfg.Connections, cfg.Duration, cfg.Progress, cfg.ProfileDir), warn: newWarnings(cfg.Log)}
	defer r.d.close()
	if err := r.runScenarios(ctx, rep); err != nil {
		return rep, err
	}
	if slices.Contains(cfg.Scenarios, Scale) {
		s, err := r.scale(ctx)
		if err != nil {
			return rep, fmt.Errorf("scale: %w", err)
		}
		rep.Scale = s
	}
	return rep, nil
}

// defaultRSABits is the size of the signing keys of in-process servers,
// the server's default.
const defaultRSABits = 2048

// loadScenarios returns the load scenarios to run, in DefaultScenarios
// order, with the floor when another one needs it.
func loadScenarios(names []string) []string {
	var out []string
	for _, name := range DefaultScenarios {
		wanted := slices.Contains(names, name)
		if name == Floor {
			for _, n := range names {
				wanted = wanted || scenarios[n].ratioTo == Floor
			}
		}
		if wanted {
			out = append(out, name)
		}
	}
	return out
}

// runScenarios runs every load scenario and appends its result.
func (r *runner) runScenarios(ctx context.Context, rep *Report) (err error) {
	names := loadScenarios(r.cfg.Scenarios)
	if len(names) == 0 {
		return nil
	}
	defer func() { err = errors.Join(err, r.close()) }()
	for _, name := range names {
		res, err := r.scenario(ctx, name)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		sc := scenarios[name]
		res.RatioTo, res.Target = sc.ratioTo, sc.target
		switch {
		case sc.ratioTo == "":
			res.Ratio = 1
		case sc.ratioTo == Floor:
			if res.FloorRPS == 0 {
				res.FloorRPS = r.floor
			}
			res.Ratio = res.RPS / res.FloorRPS
		case r.crypto != nil:
			rep.Crypto, rep.LoginLimitRPS = r.crypto, r.crypto.LoginLimitRPS
			res.Ratio = res.RPS / rep.LoginLimitRPS
		}
		res.Met = res.Skipped == "" && res.Requests > 0 && res.Errors == 0 && res.Warnings == 0 && res.Ratio >= sc.target
		if name == Floor {
			r.floor = res.RPS
		}
		rep.Scenarios = append(rep.Scenarios, res)
	}
	return nil
}

// result summarises a load run.
func result(name string, m *measured) Result {
	return Result{
		Name: name, Requests: m.requests, Errors: m.errors, RPS: m.rps(),
		P50Ms: ms(m.hist.quantile(0.50)), P90Ms: ms(m.hist.quantile(0.90)), P99Ms: ms(m.hist.quantile(0.99)),
		CPUUs: us(m.cpuPerRequest()), GCShare: m.gcShare(), FirstError: m.errSample,
	}
}
