// Command gatehouse-bench is Gatehouse's benchmark instrument: it drives
// load at a Gatehouse server, one it starts in-process through
// internal/server or a running one (--target), and reports throughput,
// latency and CPU time per scenario; see `gatehouse-bench --help` and
// docs/benchmarks.md. It is a binary of its own so that the gatehouse
// binary does not link the load generator.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/bench"
	"github.com/gatehouse/gatehouse/internal/gcpolicy"
	"github.com/gatehouse/gatehouse/internal/server"
)

func main() {
	if err := newCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "gatehouse-bench:", err)
		os.Exit(1)
	}
}

func newCmd() *cobra.Command {
	var (
		cfg    bench.Config
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "gatehouse-bench",
		Short: "Benchmark a Gatehouse server (by default one started in-process)",
		Long: "Drive load over real HTTP connections at a Gatehouse server, scenario by scenario,\n" +
			"and report requests, errors, req/s, latency percentiles and CPU time, each scenario's\n" +
			"throughput also as a ratio to the floor (GET /healthz) or, for login, to the\n" +
			"machine's cryptographic limit. Scenarios: " + fmt.Sprint(bench.DefaultScenarios) + " (the default) and scale.",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.RootPassword == "" {
				cfg.RootPassword = server.RootPasswordFromEnv()
			}
			cfg.Progress, cfg.Log = cmd.ErrOrStderr(), cmd.ErrOrStderr()
			defer gcpolicy.Start(gcpolicy.DefaultHeadroom)() // as serve runs by default
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT) // stop cleanly: servers, data
			defer stop()
			rep, err := bench.Run(ctx, cfg)
			if rep != nil {
				if werr := writeReport(cmd, rep, asJSON); err == nil {
					err = werr
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Target, "target", "", "base URL of a running server (default: start one in-process)")
	f.StringVar(&cfg.RootPassword, "root-password", "", "root password of --target (default $GATEHOUSE_ROOT_PASSWORD)")
	f.DurationVar(&cfg.Duration, "duration", 5*time.Second, "measuring time of each scenario (plus as long on its paired floor slices)")
	f.IntVar(&cfg.Connections, "connections", 32, "concurrent connections")
	f.StringSliceVar(&cfg.Scenarios, "scenarios", nil, "scenarios to run, comma separated (default all but scale)")
	f.IntVar(&cfg.Sessions, "sessions", 1_000_000, "live sessions of the scale scenario")
	f.IntVar(&cfg.Restarts, "restarts", 1, "restarts of the scale scenario's server on its sessions (the first measured fully, the others to ready)")
	f.BoolVar(&asJSON, "json", false, "write the result as JSON on stdout")
	f.StringVar(&cfg.ProfileDir, "cpuprofile", "", "directory to write a CPU profile of each scenario's measuring time to (<scenario>.pprof)")
	return cmd
}

// writeReport writes rep to stdout as JSON or as a table.
func writeReport(cmd *cobra.Command, rep *bench.Report, asJSON bool) error {
	if !asJSON {
		return bench.WriteTable(cmd.OutOrStdout(), rep)
	}
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
