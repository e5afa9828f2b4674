package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "gatehouse",
		Short:         "Gatehouse issues, verifies, renews and revokes engine and channel tokens",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate(versionLine())
	root.AddCommand(newServeCmd(), newImportCmd(), newVersionCmd(), newHealthcheckCmd())
	root.AddCommand(adminCommands()...)
	root.AddCommand(newResetRootCmd(), newRestoreCmd())
	return root
}

// applyEnvAndFile fills every flag the command line did not set, first
// from GATEHOUSE_<FLAG> (upper case, dashes to underscores), then from the
// YAML file named by --config (keys are flag names), or else by
// GATEHOUSE_CONFIG. Flags win over the environment, the environment over
// the file. The file is serve's: a key that is not a serve setting is
// refused, and another command takes from it the settings it shares with
// serve (those of the store) and ignores the others.
func applyEnvAndFile(flags *pflag.FlagSet, configFile string) error {
	if f := flags.Lookup("config"); f != nil && !f.Changed {
		if v, ok := os.LookupEnv(envName(f)); ok {
			if err := flags.Set(f.Name, v); err != nil {
				return err
			}
			configFile = v
		}
	}
	file := map[string]yaml.Node{}
	if configFile != "" {
		b, err := os.ReadFile(configFile)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		if err := yaml.Unmarshal(b, &file); err != nil {
			return fmt.Errorf("config %s: %w", configFile, err)
		}
		for k := range file {
			if fileSections[k] {
				continue
			}
			if k == "config" || !isServeSetting(k) {
				return fmt.Errorf("config %s: unknown setting %q", configFile, k)
			}
		}
	}
	var err error
	flags.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		env := envName(f)
		if v, ok := os.LookupEnv(env); ok {
			err = setFlag(flags, f, splitList(f, v))
			if err != nil {
				err = fmt.Errorf("%s: %w", env, err)
			}
			return
		}
		if node, ok := file[f.Name]; ok {
			values, set, verr := yamlValues(&node)
			if set {
				verr = setFlag(flags, f, values)
			}
			if verr != nil {
				err = fmt.Errorf("config %s: %s: %w", configFile, f.Name, verr)
			}
		}
	})
	return err
}

// isServeSetting reports whether name is a setting of serve, a key its
// config file may hold.
func isServeSetting(name string) bool { return newServeCmd().Flags().Lookup(name) != nil }

// envName is the environment variable of a flag: GATEHOUSE_<FLAG>.
func envName(f *pflag.Flag) string {
	return "GATEHOUSE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
}

// fileSections are keys of the config file that are not flags but
// structured settings, read with readSection.
var fileSections = map[string]bool{"routes": true}

// readSection decodes the value of key in the YAML config file into v,
// refusing unknown fields. A missing file name or key leaves v alone.
func readSection(configFile, key string, v any) error {
	if configFile == "" {
		return nil
	}
	b, err := os.ReadFile(configFile)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("config %s: %w", configFile, err)
	}
	node, ok := doc[key]
	if !ok {
		return nil
	}
	section, err := yaml.Marshal(&node)
	if err != nil {
		return fmt.Errorf("config %s: %s: %w", configFile, key, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(section))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("config %s: %s: %w", configFile, key, err)
	}
	return nil
}

func isList(f *pflag.Flag) bool {
	return strings.HasSuffix(f.Value.Type(), "Slice") || strings.HasSuffix(f.Value.Type(), "Array")
}

// splitList splits an environment value of a list flag on commas.
func splitList(f *pflag.Flag, v string) []string {
	if isList(f) {
		return strings.Split(v, ",")
	}
	return []string{v}
}

// yamlValues turns a YAML scalar or sequence of scalars into flag values:
// each scalar's text as written, so that 0123 stays 0123 (not 83) and
// 1.50 stays 1.50. A null leaves the flag unset (set is false).
func yamlValues(n *yaml.Node) (values []string, set bool, err error) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		return nil, false, nil
	case n.Kind == yaml.ScalarNode:
		return []string{n.Value}, true, nil
	case n.Kind == yaml.SequenceNode:
		out := make([]string, len(n.Content))
		for i, e := range n.Content {
			if e.Kind == yaml.AliasNode {
				e = e.Alias
			}
			if e.Kind != yaml.ScalarNode {
				return nil, false, fmt.Errorf("takes a value or a list of values")
			}
			out[i] = e.Value
		}
		return out, true, nil
	}
	return nil, false, fmt.Errorf("takes a value or a list of values")
}

func setFlag(flags *pflag.FlagSet, f *pflag.Flag, values []string) error {
	if len(values) > 1 && !isList(f) {
		return fmt.Errorf("takes one value")
	}
	for _, v := range values {
		if err := flags.Set(f.Name, strings.TrimSpace(v)); err != nil {
			return err
		}
	}
	return nil
}
