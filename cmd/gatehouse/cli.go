package main

// The admin commands (login, logout, account, role, lock, app, channel,
// session, key, audit, backup) speak to a running Gatehouse over its HTTP API
// through pkg/client. They live in this package, one file per family,
// because only commands and pkg/ may speak HTTP (test/architecture).

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
	"golang.org/x/term"

	"github.com/gatehouse/gatehouse/pkg/client"
)

// defaultServer is where login goes without --server, GATEHOUSE_SERVER
// or an earlier login: serve's default --listen.
const defaultServer = "http://127.0.0.1:30100"

// cli is the state the admin commands share: the global flags of one
// invocation.
type cli struct {
	server string
	caFile string
	output outputFormat
}

// adminCommands returns the commands that speak to a running server.
func adminCommands() []*cobra.Command {
	c := &cli{output: "table"}
	return []*cobra.Command{
		c.loginCmd(), c.logoutCmd(),
		c.accountCmd(), c.roleCmd(), c.lockCmd(), c.keyCmd(), c.auditCmd(),
		c.appCmd(), c.channelCmd(), c.sessionCmd(), c.backupCmd(),
	}
}

// connFlags adds --server and --ca-file to cmd and its subcommands.
func (c *cli) connFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&c.server, "server", "", "Gatehouse URL [$GATEHOUSE_SERVER, else the last login]")
	f.StringVar(&c.caFile, "ca-file", "", "CA bundle verifying the server's certificate [$GATEHOUSE_CA_FILE, else the login's]")
}

// group returns a command of subcommands with the connection and output
// flags.
func (c *cli) group(use, short string, aliases []string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Aliases: aliases, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() }}
	c.connFlags(cmd)
	cmd.PersistentFlags().VarP(&c.output, "output", "o", "output format: table, json or yaml")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.AddCommand(subs...)
	return cmd
}

// outputFormat is the value of -o; it refuses unknown formats when the
// flag is parsed.
type outputFormat string

func (o *outputFormat) String() string { return string(*o) }
func (o *outputFormat) Type() string   { return "format" }
func (o *outputFormat) Set(v string) error {
	switch v {
	case "table", "json", "yaml":
		*o = outputFormat(v)
		return nil
	}
	return fmt.Errorf("unknown format %q: table, json or yaml", v)
}

// --- credentials -----------------------------------------------------------

// credentials is the file of logins in the user's config directory,
// mode 0600. It holds tokens, never passwords.
type credentials struct {
	Current string            `json:"current"`
	Servers map[string]*login `json:"servers"`
}

// login is what is kept of a login to one server.
type login struct {
	Name   string `json:"name"`
	Token  string `json:"token"`
	CAFile string `json:"caFile,omitempty"`
}

func credentialsPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no config directory for the login: %w", err)
	}
	return filepath.Join(dir, "gatehouse", "credentials.json"), nil
}

func loadCredentials() (*credentials, error) {
	creds := &credentials{Servers: map[string]*login{}}
	path, err := credentialsPath()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return creds, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, creds); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if creds.Servers == nil {
		creds.Servers = map[string]*login{}
	}
	return creds, nil
}

// save writes the credentials through a temporary file, so a crash leaves
// the old or the new file, each readable only by the owner.
func (cr *credentials) save() error {
	path, err := credentialsPath()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(cr, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".credentials-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// --- connection ------------------------------------------------------------

// serverURL is --server, else $GATEHOUSE_SERVER, else fallback.
func (c *cli) serverURL(fallback string) (string, error) {
	s := c.server
	if s == "" {
		s = os.Getenv("GATEHOUSE_SERVER")
	}
	if s == "" {
		s = fallback
	}
	if s == "" {
		return "", errors.New("not logged in: run gatehouse login --server URL")
	}
	if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		return "", fmt.Errorf("server %q: give the URL with http:// or https://", s)
	}
	return strings.TrimSuffix(s, "/"), nil
}

// caPath is --ca-file, else $GATEHOUSE_CA_FILE, else fallback.
func (c *cli) caPath(fallback string) string {
	if c.caFile != "" {
		return c.caFile
	}
	if v := os.Getenv("GATEHOUSE_CA_FILE"); v != "" {
		return v
	}
	return fallback
}

// httpClient returns a client trusting the CA bundle in caFile, or the
// system's roots when caFile is empty.
func httpClient(caFile string) (*http.Client, error) {
	hc := &http.Client{Timeout: time.Minute}
	if caFile == "" {
		return hc, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca-file %s: no PEM certificate", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	hc.Transport = tr
	return hc, nil
}

// conn is a logged-in connection to one server.
type conn struct {
	server string
	name   string
	token  string
	hc     *http.Client
	admin  *client.Admin
}

// connect returns the connection of the stored login to the selected
// server. A token in the last tenth of its life, or expired, is renewed
// by asking for the password when stdin is a terminal; an expired one
// otherwise ends the command with a request to log in again (the engine
// API has no refresh grant, and the password is never stored). Without
// renew nothing is asked.
func (c *cli) connect(cmd *cobra.Command, renew bool) (*conn, error) {
	creds, err := loadCredentials()
	if err != nil {
		return nil, err
	}
	server, err := c.serverURL(creds.Current)
	if err != nil {
		return nil, err
	}
	l := creds.Servers[server]
	if l == nil {
		return nil, fmt.Errorf("not logged in to %s: run gatehouse login --server %s", server, server)
	}
	hc, err := httpClient(c.caPath(l.CAFile))
	if err != nil {
		return nil, err
	}
	iat, exp, err := client.TokenTimes(l.Token)
	if err != nil {
		return nil, fmt.Errorf("the stored login to %s is damaged (%v): run gatehouse login --server %s", server, err, server)
	}
	if now := time.Now(); renew && now.After(exp.Add(-exp.Sub(iat)/10)) {
		prompt := fmt.Sprintf("The login of %s to %s expires %s; password: ", l.Name, server, exp.Local().Format(time.RFC3339))
		pw, ok, err := askPassword(cmd.InOrStdin(), cmd.ErrOrStderr(), prompt)
		switch {
		case err != nil:
			return nil, err
		case ok:
			tok, err := client.Login(cmd.Context(), hc, server, l.Name, pw, exp.Sub(iat).Round(time.Second))
			if err != nil {
				return nil, err
			}
			l.Token = tok
			if err := creds.save(); err != nil {
				return nil, err
			}
		case !now.Before(exp):
			return nil, fmt.Errorf("the login of %s to %s expired at %s: run gatehouse login --server %s",
				l.Name, server, exp.Local().Format(time.RFC3339), server)
		}
	}
	return &conn{server: server, name: l.Name, token: l.Token, hc: hc, admin: client.NewAdmin(server, client.BearerToken(hc, l.Token))}, nil
}

// run wraps an admin action: it connects, then runs f.
func (c *cli) run(f func(cmd *cobra.Command, args []string, cn *conn) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cn, err := c.connect(cmd, true)
		if err != nil {
			return err
		}
		return apiError(f(cmd, args, cn), cn.server)
	}
}

// apiError words an error answer of the API for stderr: its code and
// message, and what to do when the login is no longer valid.
func apiError(err error, server string) error {
	var ae *client.Error
	if !errors.As(err, &ae) {
		return err
	}
	msg := ae.Code + " " + ae.Message
	if ae.Code == "" {
		msg = http.StatusText(ae.Status)
	}
	if ae.Detail != "" {
		msg += ": " + ae.Detail
	}
	msg += fmt.Sprintf(" (HTTP %d)", ae.Status)
	switch ae.Code {
	case "401201", "401205", "401206":
		msg += fmt.Sprintf("; run gatehouse login --server %s", server)
	}
	return errors.New(msg)
}

// --- passwords -------------------------------------------------------------

// askPassword prompts on errOut and reads a password from in without echo
// when in is a terminal; ok is false when it is not.
var askPassword = func(in io.Reader, errOut io.Writer, prompt string) (pw string, ok bool, err error) {
	f, ok := terminal(in)
	if !ok {
		return "", false, nil
	}
	fmt.Fprint(errOut, prompt)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(errOut)
	if err != nil {
		return "", false, err
	}
	return string(b), true, nil
}

// terminal returns v as a file when it is an *os.File open on a terminal;
// ok is false otherwise.
func terminal(v any) (f *os.File, ok bool) {
	f, ok = v.(*os.File)
	return f, ok && term.IsTerminal(int(f.Fd()))
}

// passwordSource is how a command takes a password: --password-stdin,
// --password (with a warning) or a prompt without echo.
type passwordSource struct {
	stdin bool
	flag  string
	lines *bufio.Reader
}

func (p *passwordSource) flags(cmd *cobra.Command, what string) {
	cmd.Flags().BoolVar(&p.stdin, "password-stdin", false, "read the "+what+" from the first line of stdin")
	cmd.Flags().StringVar(&p.flag, "password", "", "the "+what+" (insecure: visible in the shell history and process list; prefer --password-stdin)")
	cmd.MarkFlagsMutuallyExclusive("password-stdin", "password")
}

// read returns one password; prompt is shown on a terminal. With
// --password-stdin each call reads the next line.
func (p *passwordSource) read(cmd *cobra.Command, prompt string) (string, error) {
	switch {
	case p.flag != "":
		fmt.Fprintln(cmd.ErrOrStderr(), "WARNING! A password on the command line is insecure; use --password-stdin.")
		return p.flag, nil
	case p.stdin:
		if p.lines == nil {
			p.lines = bufio.NewReader(cmd.InOrStdin())
		}
		line, err := p.lines.ReadString('\n')
		if err != nil && (!errors.Is(err, io.EOF) || line == "") {
			return "", fmt.Errorf("--password-stdin: no password on stdin")
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	pw, ok, err := askPassword(cmd.InOrStdin(), cmd.ErrOrStderr(), prompt)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", errors.New("stdin is not a terminal to ask for the password: use --password-stdin")
	}
	return pw, nil
}

// --- output ----------------------------------------------------------------

// table is the table form of an answer: a header and rows.
type table struct {
	header []string
	rows   [][]string
}

// print writes v in the selected format; t is its table form.
func (c *cli) print(cmd *cobra.Command, v any, t table) error {
	w := cmd.OutOrStdout()
	switch c.output {
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "yaml":
		// Through JSON, so YAML has the API's field names.
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		var generic any
		if err := json.Unmarshal(b, &generic); err != nil {
			return err
		}
		y, err := yaml.Marshal(generic)
		if err != nil {
			return err
		}
		_, err = w.Write(y)
		return err
	}
	return writeTable(w, t)
}

// writeTable writes t's header, when it has one, and rows in aligned
// columns.
func writeTable(w io.Writer, t table) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if t.header != nil {
		fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	}
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// done reports a change that answers nothing: a line in table format,
// nothing in json or yaml.
func (c *cli) done(cmd *cobra.Command, format string, args ...any) {
	if c.output == "table" {
		fmt.Fprintf(cmd.OutOrStdout(), format+"\n", args...)
	}
}

// rowsOf builds table rows of items.
func rowsOf[T any](items []T, row func(T) []string) [][]string {
	out := make([][]string, len(items))
	for i, it := range items {
		out[i] = row(it)
	}
	return out
}

// nonNil makes an empty list print as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// unixTime renders a unix-seconds string of the API as RFC 3339.
func unixTime(s string) string {
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil || n == 0 {
		return s
	}
	return time.Unix(n, 0).UTC().Format(time.RFC3339)
}

// completeNames completes the argument of a command with the name of
// every item list returns.
func completeNames[T any](c *cli, list func(*client.Admin, context.Context) ([]T, error), name func(T) string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		cn, err := c.connect(cmd, false)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		items, err := list(cn.admin, cmd.Context())
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return namesOf(items, name), cobra.ShellCompDirectiveNoFileComp
	}
}

// namesOf returns the name of each item.
func namesOf[T any](items []T, name func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = name(it)
	}
	return out
}

// --- commands of every resource ----------------------------------------------

// listCommand returns the "list" command of a resource: every item list
// returns, as tab renders them.
func listCommand[T any](c *cli, short string, list func(*client.Admin, context.Context) ([]T, error), tab func([]T) table) *cobra.Command {
	return &cobra.Command{Use: "list", Short: short, Args: cobra.NoArgs,
		RunE: c.run(func(cmd *cobra.Command, _ []string, cn *conn) error {
			items, err := list(cn.admin, cmd.Context())
			if err != nil {
				return err
			}
			return c.print(cmd, nonNil(items), tab(items))
		})}
}

// getCommand returns the "get" command of a resource: the item its one
// argument names, as tab renders it.
func getCommand[T any](c *cli, use, short string, get func(*client.Admin, context.Context, string) (T, error), tab func([]T) table, complete cobra.CompletionFunc) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: cobra.ExactArgs(1),
		ValidArgsFunction: complete,
		RunE: c.run(func(cmd *cobra.Command, args []string, cn *conn) error {
			item, err := get(cn.admin, cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printOne(c, cmd, item, tab)
		})}
}

// updateCommand returns the "update" command of a resource: it sends the
// change request builds from the flags to the item its one argument
// names, and prints the item as tab renders it.
func updateCommand[R, T any](c *cli, use, short string, complete cobra.CompletionFunc, request func(*cobra.Command) (R, error),
	update func(*client.Admin, context.Context, string, R) (T, error), tab func([]T) table) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: cobra.ExactArgs(1),
		ValidArgsFunction: complete,
		RunE: c.run(func(cmd *cobra.Command, args []string, cn *conn) error {
			req, err := request(cmd)
			if err != nil {
				return err
			}
			item, err := update(cn.admin, cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			return printOne(c, cmd, item, tab)
		})}
}

// actCommand returns a command that applies act to the item its one
// argument names and answers nothing; done, a format of that argument,
// reports the success.
func (c *cli) actCommand(use, short, done string, act func(*client.Admin, context.Context, string) error, complete cobra.CompletionFunc) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: cobra.ExactArgs(1),
		ValidArgsFunction: complete,
		RunE: c.run(func(cmd *cobra.Command, args []string, cn *conn) error {
			err := act(cn.admin, cmd.Context(), args[0])
			if err == nil {
				c.done(cmd, done, args[0])
			}
			return err
		})}
}

// printOne prints one item with its one-row table.
func printOne[T any](c *cli, cmd *cobra.Command, item T, tab func([]T) table) error {
	return c.print(cmd, item, tab([]T{item}))
}
