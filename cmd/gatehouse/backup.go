package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/store/backup"
	"github.com/gatehouse/gatehouse/internal/store/etcd"
	"github.com/gatehouse/gatehouse/pkg/client"
)

// backupCmd is `gatehouse backup`: a consistent snapshot of a running
// server's store, through the API, into a file or stdout.
func (c *cli) backupCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "backup --out FILE",
		Short: "Write a consistent backup of a running server's store",
		Long: "Write a consistent backup of the whole store of a running server (GET /v4/backup) to FILE,\n" +
			"or to stdout with --out -. It needs root or a role with the backup permission. The file\n" +
			"holds the signing keys, password hashes and secrets: keep it as carefully as the store.\n" +
			"It is checked as it arrives and FILE appears (or is replaced) only once it is complete\n" +
			"and intact.\n" +
			"Restore it with gatehouse restore, into either store backend.",
		Example: "  gatehouse backup --out /var/backups/gatehouse-$(date +%F).backup\n" +
			"  gatehouse backup --out - | gzip > gatehouse.backup.gz",
		Args: cobra.NoArgs,
		RunE: c.run(func(cmd *cobra.Command, _ []string, cn *conn) error {
			return runBackup(cmd, cn, out)
		}),
	}
	c.connFlags(cmd)
	cmd.Flags().StringVar(&out, "out", "", "file to write, or - for stdout")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// runBackup streams the backup to out through a verifier: a file is
// written beside out and renamed over it only when the whole backup
// arrived intact.
func runBackup(cmd *cobra.Command, cn *conn, out string) (err error) {
	// A large store takes longer than the one-minute limit of the other
	// commands; the command's context still ends it.
	hc := *cn.hc
	hc.Timeout = 0
	admin := client.NewAdmin(cn.server, client.BearerToken(&hc, cn.token))

	var dest io.Writer = cmd.OutOrStdout()
	var file *os.File
	if out != "-" {
		if file, err = os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".partial-*"); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		defer func() {
			if file != nil {
				file.Close()
				os.Remove(file.Name())
			}
		}()
		if err := file.Chmod(0o600); err != nil {
			return err
		}
		dest = file
	}

	// The verifier reads what arrives through a pipe and keeps draining
	// after an error, so the download never blocks on it.
	pr, pw := io.Pipe()
	verified := make(chan error, 1)
	var header backup.Header
	go func() {
		h, err := backup.Verify(pr)
		header = h
		_, _ = io.Copy(io.Discard, pr)
		verified <- err
	}()
	var n atomic.Int64
	stop := progress(cmd, &n)
	start := time.Now()
	rev, _, err := admin.Backup(cmd.Context(), io.MultiWriter(dest, pw, countWriter{&n}))
	pw.Close()
	verr := <-verified
	stop()
	where, lost := "stdout", "what went to stdout is not a usable backup"
	if file != nil {
		where, lost = out, "nothing was written to "+out
	}
	var ae *client.Error
	switch {
	case errors.As(err, &ae) && ae.Status == 403:
		return fmt.Errorf("%v; a backup needs root or a role with the backup permission (gatehouse role create NAME --perm backup:get)",
			apiError(err, cn.server))
	case errors.As(err, &ae):
		return err
	case err != nil:
		return fmt.Errorf("%w; run the backup again (%s)", err, lost)
	case verr != nil:
		return fmt.Errorf("the server's backup is not intact: %w; run the backup again (%s)", verr, lost)
	}
	if file != nil {
		if err := file.Sync(); err != nil {
			return err
		}
		if err := file.Close(); err != nil {
			return err
		}
		if err := os.Rename(file.Name(), out); err != nil {
			return err
		}
		file = nil
	}
	if _, ok := terminal(cmd.ErrOrStderr()); ok {
		fmt.Fprintf(cmd.ErrOrStderr(), "backup of %d items at revision %d (%s, %s store): %s in %s\n",
			header.Items, rev, where, header.Backend, byteSize(n.Load()), time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// countWriter counts the bytes written through it.
type countWriter struct{ n *atomic.Int64 }

func (w countWriter) Write(b []byte) (int, error) {
	w.n.Add(int64(len(b)))
	return len(b), nil
}

// progress shows the bytes received so far on stderr while it is a
// terminal, and nothing otherwise; the returned function ends it.
func progress(cmd *cobra.Command, n *atomic.Int64) func() {
	w := cmd.ErrOrStderr()
	if _, ok := terminal(w); !ok {
		return func() {}
	}
	done, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				fmt.Fprintf(w, "\rbackup: %s received", byteSize(n.Load()))
			case <-done:
				fmt.Fprint(w, "\r\033[K")
				return
			}
		}
	}()
	return func() { close(done); <-ended }
}

// byteSize renders a byte count for people.
func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// newRestoreCmd is `gatehouse restore`: a backup into a stopped data
// directory or an empty etcd prefix.
func newRestoreCmd() *cobra.Command {
	cfg := server.DefaultConfig()
	var from string
	var force bool
	cmd := &cobra.Command{
		Use:   "restore --from FILE",
		Short: "Restore a backup into a stopped data directory or an empty etcd prefix",
		Long: "Restore a backup written by gatehouse backup, from either store backend, into the store the\n" +
			"flags name. The whole file is verified first; a truncated or corrupted file is refused and\n" +
			"nothing is written. With --store bolt the server must be stopped and the data directory\n" +
			"empty (--force replaces its contents); with --store etcd the prefix must be empty.",
		Example: "  gatehouse restore --from gatehouse.backup --data /var/lib/gatehouse\n" +
			"  gatehouse restore --from gatehouse.backup --store etcd --etcd-endpoints 10.0.0.1:2379 --etcd-prefix /gatehouse/",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var in io.Reader = cmd.InOrStdin()
			name := "stdin"
			if from != "-" {
				f, err := os.Open(from)
				if err != nil {
					return fmt.Errorf("--from: %w", err)
				}
				defer f.Close()
				in, name = f, from
			}
			h, res, err := server.Restore(cmd.Context(), cfg, in, force)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			into := "data directory " + cfg.DataDir
			if cfg.Store == "etcd" {
				into = "etcd prefix " + etcd.PrefixOrDefault(cfg.EtcdPrefix)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "restored %d items into %s from a %s backup at revision %d taken %s",
				res.Restored, into, h.Backend, h.Revision, h.Created.Format(time.RFC3339))
			if res.Expired > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "; %d items had expired since", res.Expired)
			}
			if res.Replaced > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "; %d items replaced", res.Replaced)
			}
			fmt.Fprintln(cmd.OutOrStdout())
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "backup file, or - for stdin")
	cmd.Flags().BoolVar(&force, "force", false, "replace the contents of a non-empty data directory (bolt only)")
	_ = cmd.MarkFlagRequired("from")
	storeFlags(cmd.Flags(), &cfg)
	return cmd
}
