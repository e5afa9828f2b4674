package main

import (
	"errors"
	"fmt"
	"os"
	"os/user"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gatehouse/gatehouse/internal/server"
)

func newResetRootCmd() *cobra.Command {
	cfg := server.DefaultConfig()
	var pw passwordSource
	cmd := &cobra.Command{
		Use:   "reset-root",
		Short: "Set a new root password directly in the store (break-glass)",
		Long: "Set a new root password directly in the store, for when root's password is lost or root\n" +
			"is locked out: it clears root's failed logins and bans, revokes every token root holds\n" +
			"and writes an audit record. With --store bolt the server must be stopped (the file is\n" +
			"refused while a server holds it); with --store etcd replicas may keep running.",
		Example: "  gatehouse reset-root --data /var/lib/gatehouse\n" +
			"  printf '%s\\n' \"$NEW\" | gatehouse reset-root --store etcd --etcd-endpoints 10.0.0.1:2379 --password-stdin",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := pw.read(cmd, "New root password: ")
			if err != nil {
				return err
			}
			if !pw.stdin && pw.flag == "" {
				again, err := pw.read(cmd, "Again: ")
				if err != nil {
					return err
				}
				if again != p {
					return errors.New("the passwords differ")
				}
			}
			if err := server.ResetRoot(cmd.Context(), cfg, p, resetActor()); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "root's password is reset; its tokens are revoked and its locks cleared.")
			return nil
		},
	}
	storeFlags(cmd.Flags(), &cfg)
	pw.flags(cmd, "new root password")
	return cmd
}

// storeFlags adds the flags naming a store, as serve has them, to an
// offline tool's flags.
func storeFlags(f *pflag.FlagSet, cfg *server.Config) {
	f.StringVar(&cfg.DataDir, "data", cfg.DataDir, "directory of the embedded store")
	f.StringVar(&cfg.Store, "store", cfg.Store, "store backend: bolt or etcd")
	f.StringSliceVar(&cfg.EtcdEndpoints, "etcd-endpoints", nil, "etcd endpoints (host:port, comma separated)")
	f.StringVar(&cfg.EtcdPrefix, "etcd-prefix", "", "key prefix in etcd (default /gatehouse/)")
	f.StringVar(&cfg.EtcdCACert, "etcd-cacert", "", "CA bundle verifying the etcd members")
	f.StringVar(&cfg.EtcdCert, "etcd-cert", "", "client certificate for etcd")
	f.StringVar(&cfg.EtcdKey, "etcd-key", "", "private key of --etcd-cert")
}

// resetActor names who reset root in the audit record: the operating
// system's user and host.
func resetActor() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return "reset-root:" + name + "@" + host
}
