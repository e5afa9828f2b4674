package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// commit is set at build time with -ldflags "-X main.commit=..."; empty,
// the build's VCS information is used.
var commit string

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version",
		Args:  cobra.NoArgs,
		Run:   func(cmd *cobra.Command, _ []string) { printVersion(cmd.OutOrStdout()) },
	}
}

// printVersion writes versionLine.
func printVersion(w io.Writer) { fmt.Fprint(w, versionLine()) }

// versionLine is "gatehouse VERSION (commit COMMIT, GOVERSION)\n", what
// both `gatehouse version` and `gatehouse --version` print.
func versionLine() string {
	return fmt.Sprintf("gatehouse %s (commit %s, %s)\n", version, buildCommit(), runtime.Version())
}

// buildCommit is the stamped commit, else the VCS revision Go recorded
// (with "-dirty" for a modified tree), else "unknown".
func buildCommit() string {
	if commit != "" {
		return commit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	switch {
	case rev == "":
		return "unknown"
	case dirty:
		return rev + "-dirty"
	}
	return rev
}
