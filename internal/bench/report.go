package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// WriteTable writes rep as a human-readable table.
func WriteTable(w io.Writer, rep *Report) error {
	fmt.Fprintf(w, "Gatehouse bench %s, %s, %d cores, %s server, %s per scenario, %d connections\n",
		rep.Date.Format(time.RFC3339), rep.GoVersion, rep.Cores, rep.Server,
		time.Duration(rep.DurationS*float64(time.Second)), rep.Connections)
	if c := rep.Crypto; c != nil {
		fmt.Fprintf(w, "login crypto floor: argon2id verify %.1f ms (with every core hashing; %.1f ms alone) + RS512 sign %.2f ms on %d cores: login_limit_rps %.1f\n",
			c.HashMs, c.HashAloneMs, c.SignMs, c.Cores, c.LoginLimitRPS)
	}
	if len(rep.Scenarios) > 0 {
		fmt.Fprintln(w, "ratios to the floor are taken to the floor measured in slices alternating with the scenario's")
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "scenario\trequests\terrors\treq/s\tp50 ms\tp90 ms\tp99 ms\tCPU µs/req\tGC\tratio\ttarget\tmet\t")
		for _, s := range rep.Scenarios {
			if s.Skipped != "" {
				fmt.Fprintf(tw, "%s\t\t\t\t\t\t\t\t\t\t\tskipped\t\n", s.Name)
				continue
			}
			target := ""
			if s.Target > 0 {
				target = fmt.Sprintf("≥ %.2f × %s", s.Target, s.RatioTo)
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.1f\t%.0f%%\t%.2f\t%s\t%s\t\n",
				s.Name, s.Requests, s.Errors, s.RPS, s.P50Ms, s.P90Ms, s.P99Ms, s.CPUUs, 100*s.GCShare, s.Ratio, target, yes(s.Met))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, s := range rep.Scenarios {
			switch {
			case s.Skipped != "":
				fmt.Fprintf(w, "%s skipped: %s\n", s.Name, s.Skipped)
			case s.FirstError != "":
				fmt.Fprintf(w, "%s first error: %s\n", s.Name, s.FirstError)
			}
			if s.Warnings > 0 {
				fmt.Fprintf(w, "%s: the server logged %d warnings, the last: %s\n", s.Name, s.Warnings, s.LastWarning)
			}
		}
	}
	if s := rep.Scale; s != nil {
		writeScale(w, s)
	}
	return nil
}

// writeScale writes the scale scenario's results.
func writeScale(w io.Writer, s *ScaleResult) {
	fmt.Fprintf(w, "\nscale: %d sessions (seeded in %.1f s over HTTP)\n", s.Sessions, s.SeedS)
	fmt.Fprintf(w, "  resident memory      %6.0f MiB ready, %.0f MiB after load (target ≤ %.0f MiB)  %s\n",
		mib(s.RSSReadyBytes), mib(s.RSSLoadedBytes), mib(s.MemoryTargetBytes), yes(s.MemoryMet))
	fmt.Fprintf(w, "                       (live heap %.0f MiB; store file %.0f MiB, mapped by the start-up load)\n", mib(s.HeapBytes), mib(s.StoreFileBytes))
	fmt.Fprintf(w, "  restart to ready     %6.2f s (target ≤ %.0f s)  %s\n", s.RestartS, s.RestartTargetS, yes(s.RestartMet))
	fmt.Fprintf(w, "  session throughput   %6.0f req/s, %.0f req/s with %d sessions: %.2f (target ≥ %.2f)  %s\n",
		s.SessionRPS, s.BaselineRPS, s.BaselineSessions, s.Ratio, s.RatioTarget, yes(s.ThroughputMet))
	fmt.Fprintf(w, "                       (CPU %.1f µs/request, %.1f with %d sessions; garbage collection %.0f %% of it, %.0f %% with %d)\n",
		s.SessionCPUUs, s.BaselineCPUUs, s.BaselineSessions, 100*s.SessionGCShare, 100*s.BaselineGCShare, s.BaselineSessions)
	fmt.Fprintf(w, "                       (after %.1f s and %.1f s of unmeasured load, until the heap reached its goal)\n",
		s.SessionWarmUpS, s.BaselineWarmUpS)
	if s.SessionErrors+s.BaselineErrors > 0 {
		fmt.Fprintf(w, "  errors: %d with %d sessions, %d with %d sessions\n", s.SessionErrors, s.Sessions, s.BaselineErrors, s.BaselineSessions)
	}
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
