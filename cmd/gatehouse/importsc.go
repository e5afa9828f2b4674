package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/scimport"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/store/bolt"
)

func newImportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Import data from another system",
	}
	cmd.AddCommand(newImportSCCmd())
	return cmd
}

func newImportSCCmd() *cobra.Command {
	cfg := server.DefaultConfig()
	var src scimport.EtcdSource
	var fromCA, fromCert, fromKey, dump, keyFile, configFile string
	var opts scimport.Options
	cmd := &cobra.Command{
		Use:   "sc",
		Short: "Import accounts, roles, account locks and the signing key of Apache ServiceComb Service Center",
		Long: "Import Service Center's accounts (password hashes as they are), roles (permissions verbatim),\n" +
			"active account locks and, with --sc-private-key, its signing key, from its etcd or a dump of it,\n" +
			"into the store that `gatehouse serve` opens with the same --data, --store and --etcd-* settings\n" +
			"(flags, then GATEHOUSE_<FLAG> environment, then serve's YAML file named by --config or GATEHOUSE_CONFIG). Records that\n" +
			"exist and differ are reported and left alone unless --overwrite. Running it again changes nothing.\n" +
			"See docs/migrating-from-service-center.md.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnvAndFile(cmd.Flags(), configFile); err != nil {
				return err
			}
			if (dump == "") == (len(src.Endpoints) == 0) {
				return errors.New("give exactly one of --from-dump and --from-etcd")
			}
			if keyFile != "" {
				pem, err := os.ReadFile(keyFile)
				if err != nil {
					return fmt.Errorf("--sc-private-key: %w", err)
				}
				opts.PrivateKeyPEM = pem
			}
			kvs, err := readSource(cmd.Context(), dump, src, fromCA, fromCert, fromKey)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			st, err := server.OpenStore(ctx, cfg, slog.New(slog.DiscardHandler), bolt.Options{})
			if err != nil {
				return fmt.Errorf("open the target store: %w", err)
			}
			defer st.Close()
			opts.Prefix = src.Prefix
			sum, err := scimport.Import(ctx, st, kvs, opts)
			sum.Write(cmd.OutOrStdout())
			if err != nil {
				return fmt.Errorf("import stopped: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dump, "from-dump", "", `JSON dump of Service Center's etcd: [{"key": ..., "value": ...}]`)
	f.StringSliceVar(&src.Endpoints, "from-etcd", nil, "Service Center's etcd endpoints (host:port, comma separated)")
	f.StringVar(&fromCA, "from-etcd-ca", "", "CA bundle verifying Service Center's etcd members")
	f.StringVar(&fromCert, "from-etcd-cert", "", "client certificate for Service Center's etcd")
	f.StringVar(&fromKey, "from-etcd-key", "", "private key of --from-etcd-cert")
	f.StringVar(&src.Prefix, "from-prefix", scimport.DefaultPrefix, "key prefix of Service Center's data")
	f.StringVar(&keyFile, "sc-private-key", "", "PEM file (PKCS#1 or PKCS#8) of Service Center's RSA signing key, imported as the active key")
	f.BoolVar(&opts.Overwrite, "overwrite", false, "replace existing accounts, roles and locks that differ from Service Center's")
	f.BoolVar(&opts.DryRun, "dry-run", false, "print what would change and write nothing")
	f.StringVar(&configFile, "config", "", "serve's YAML file of settings: its store settings are read")
	f.StringVar(&cfg.DataDir, "data", cfg.DataDir, "directory of the embedded store (the server must be stopped)")
	f.StringVar(&cfg.Store, "store", cfg.Store, "store backend: bolt or etcd")
	f.StringSliceVar(&cfg.EtcdEndpoints, "etcd-endpoints", nil, "Gatehouse's etcd endpoints (host:port, comma separated)")
	f.StringVar(&cfg.EtcdPrefix, "etcd-prefix", "", "Gatehouse's key prefix in etcd (default /gatehouse/)")
	f.StringVar(&cfg.EtcdCACert, "etcd-cacert", "", "CA bundle verifying Gatehouse's etcd members")
	f.StringVar(&cfg.EtcdCert, "etcd-cert", "", "client certificate for Gatehouse's etcd")
	f.StringVar(&cfg.EtcdKey, "etcd-key", "", "private key of --etcd-cert")
	return cmd
}

// readSource reads Service Center's keys from the dump file or, without
// one, from its live etcd.
func readSource(ctx context.Context, dump string, src scimport.EtcdSource, ca, cert, key string) ([]scimport.KV, error) {
	if dump != "" {
		f, err := os.Open(dump)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		kvs, err := scimport.ReadDump(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", dump, err)
		}
		return kvs, nil
	}
	var err error
	if src.TLS, err = server.EtcdTLS(ca, cert, key); err != nil {
		return nil, err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	return scimport.ReadEtcd(ctx, src)
}
