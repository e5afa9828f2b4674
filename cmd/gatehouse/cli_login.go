package main

import (
	"bufio"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/pkg/client"
)

func (c *cli) loginCmd() *cobra.Command {
	var name string
	var ttl time.Duration
	var pw passwordSource
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in to a Gatehouse and keep the token in the user's config directory",
		Long: "Log in to a Gatehouse as an account and keep the engine token (never the password) in\n" +
			"<user config dir>/gatehouse/credentials.json, readable only by the owner. The other commands\n" +
			"use the last login; in the last tenth of the token's life they ask for the password again\n" +
			"when stdin is a terminal.",
		Example: "  gatehouse login --server http://127.0.0.1:30100 --name root\n" +
			"  printf '%s\\n' \"$PASSWORD\" | gatehouse login --server https://gh.example:30100 --ca-file ca.pem --name ops --password-stdin",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			creds, err := loadCredentials()
			if err != nil {
				return err
			}
			server, err := c.serverURL(defaultServer)
			if err != nil {
				return err
			}
			caFile := c.caPath("")
			hc, err := httpClient(caFile)
			if err != nil {
				return err
			}
			if name == "" {
				if name, err = askName(cmd); err != nil {
					return err
				}
			}
			password, err := pw.read(cmd, "Password: ")
			if err != nil {
				return err
			}
			tok, err := client.Login(cmd.Context(), hc, server, name, password, ttl)
			if err != nil {
				return apiError(err, server)
			}
			_, exp, err := client.TokenTimes(tok)
			if err != nil {
				return err
			}
			creds.Servers[server] = &login{Name: name, Token: tok, CAFile: caFile}
			creds.Current = server
			if err := creds.save(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Logged in to %s as %s until %s.\n", server, name, exp.UTC().Format(time.RFC3339))
			return nil
		},
	}
	c.connFlags(cmd)
	cmd.Flags().StringVar(&name, "name", "", "account name (asked when stdin is a terminal)")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "token lifetime, 15m to 24h (default: the server's, 12h)")
	pw.flags(cmd, "password")
	return cmd
}

// askName reads the account name from a terminal.
func askName(cmd *cobra.Command) (string, error) {
	f, ok := terminal(cmd.InOrStdin())
	if !ok {
		return "", errors.New("--name is required when stdin is not a terminal")
	}
	fmt.Fprint(cmd.ErrOrStderr(), "Name: ")
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

func (c *cli) logoutCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "Revoke the stored token and forget it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			creds, err := loadCredentials()
			if err != nil {
				return err
			}
			server, err := c.serverURL(creds.Current)
			if err != nil {
				return err
			}
			l := creds.Servers[server]
			if l == nil {
				return fmt.Errorf("not logged in to %s", server)
			}
			hc, err := httpClient(c.caPath(l.CAFile))
			if err != nil {
				return err
			}
			// A token the server refuses (expired, revoked) is dead
			// already; any other failure keeps it, to be revoked later.
			var ae *client.Error
			if err := client.Logout(cmd.Context(), hc, server, l.Token); err != nil && !(errors.As(err, &ae) && ae.Status == 401) {
				return fmt.Errorf("the token is kept, as it may still be valid: %w", apiError(err, server))
			}
			delete(creds.Servers, server)
			if creds.Current == server {
				creds.Current = ""
			}
			if err := creds.save(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Logged out of %s.\n", server)
			return nil
		},
	}
	c.connFlags(cmd)
	return cmd
}
