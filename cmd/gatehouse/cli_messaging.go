package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/pkg/client"
)

func appTable(as []client.App) table {
	return table{[]string{"APP KEY", "NAME", "STATUS", "DESCRIPTION", "CREATED"}, rowsOf(as, func(a client.App) []string {
		return []string{a.AppKey, a.Name, a.Status, a.Description, unixTime(a.CreateTime)}
	})}
}

// appKeys completes an app key.
func (c *cli) appKeys() cobra.CompletionFunc {
	return completeNames(c, (*client.Admin).Apps, func(a client.App) string { return a.AppKey })
}

// secretWarning goes to stderr with every secret printed.
const secretWarning = "The app secret is shown this once: store it now."

func (c *cli) appCmd() *cobra.Command {
	list := listCommand(c, "List the apps", (*client.Admin).Apps, appTable)
	get := getCommand(c, "get APPKEY", "Show an app", (*client.Admin).App, appTable, c.appKeys())

	var description string
	create := &cobra.Command{Use: "create NAME", Short: "Create an app; its secret is printed once", Args: cobra.ExactArgs(1),
		RunE: c.run(func(cmd *cobra.Command, args []string, cn *conn) error {
			a, err := cn.admin.CreateApp(cmd.Context(), args[0], description)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), secretWarning)
			return c.print(cmd, a, table{[]string{"APP KEY", "APP SECRET", "NAME"}, [][]string{{a.AppKey, a.AppSecret, a.Name}}})
		})}
	create.Flags().StringVar(&description, "description", "", "what the app is")

	var upName, upDescription, upStatus string
	update := updateCommand(c, "update APPKEY", "Rename, describe, deactivate or activate an app", c.appKeys(),
		func(cmd *cobra.Command) (client.UpdateApp, error) {
			var req client.UpdateApp
			set := func(flag string, v *string, dst **string) {
				if cmd.Flags().Changed(flag) {
					*dst = v
				}
			}
			set("name", &upName, &req.Name)
			set("description", &upDescription, &req.Description)
			set("status", &upStatus, &req.Status)
			if req.Name == nil && req.Description == nil && req.Status == nil {
				return req, errors.New("nothing to update: give --name, --description or --status")
			}
			return req, nil
		}, (*client.Admin).UpdateApp, appTable)
	update.Flags().StringVar(&upName, "name", "", "new name")
	update.Flags().StringVar(&upDescription, "description", "", "new description")
	update.Flags().StringVar(&upStatus, "status", "", "active or inactive (inactive revokes its tokens and sessions)")

	del := c.actCommand("delete APPKEY", "Delete an app", "app %s deleted", (*client.Admin).DeleteApp, c.appKeys())

	var grace time.Duration
	rotate := &cobra.Command{Use: "rotate APPKEY", Short: "Give an app a new secret, printed once", Args: cobra.ExactArgs(1),
		ValidArgsFunction: c.appKeys(),
		RunE: c.run(func(cmd *cobra.Command, args []string, cn *conn) error {
			s, err := cn.admin.RotateSecret(cmd.Context(), args[0], grace)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), secretWarning)
			return c.print(cmd, s, table{[]string{"APP KEY", "APP SECRET"}, [][]string{{s.AppKey, s.AppSecret}}})
		})}
	rotate.Flags().DurationVar(&grace, "grace", 0, "how long the old secret and its AccessTokens keep working (whole seconds, at most 24h)")

	var tokenSecret secretSource
	token := &cobra.Command{Use: "token APPKEY", Short: "Exchange an app's key and secret for an AccessToken (tokenByAkSk)",
		Long: "Exchange an app's key and secret for an API Fabric AccessToken (tokenByAkSk), as the app\n" +
			"itself does; needs no login. Prints the AccessToken.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, server, err := c.fabric(cmd, args[0], &tokenSecret)
			if err != nil {
				return err
			}
			tok, err := f.AccessToken(cmd.Context())
			if err != nil {
				return apiError(err, server)
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		}}
	tokenSecret.flags(token)

	cmd := c.group("app", "Manage API Fabric apps", []string{"apps"}, list, get, create, update, del, rotate)
	cmd.AddCommand(token)
	return cmd
}

// secretSource reads an app secret from stdin.
type secretSource struct{ stdin bool }

func (s *secretSource) flags(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&s.stdin, "secret-stdin", false, "read the app secret from the first line of stdin (else asked without echo)")
}

// fabric returns a client of the app appKey, its secret read from stdin
// or asked, at the selected server. It needs no login.
func (c *cli) fabric(cmd *cobra.Command, appKey string, s *secretSource) (*client.Fabric, string, error) {
	creds, err := loadCredentials()
	if err != nil {
		return nil, "", err
	}
	server, err := c.serverURL(creds.Current)
	if err != nil {
		return nil, "", err
	}
	var ca string
	if l := creds.Servers[server]; l != nil {
		ca = l.CAFile
	}
	hc, err := httpClient(c.caPath(ca))
	if err != nil {
		return nil, "", err
	}
	src := passwordSource{stdin: s.stdin}
	secret, err := src.read(cmd, "Secret of app "+appKey+": ")
	if err != nil {
		return nil, "", fmt.Errorf("app secret: %w", err)
	}
	return client.NewFabric(client.FabricConfig{BaseURL: server, AppKey: appKey, AppSecret: secret, HTTPClient: hc}), server, nil
}

func channelTable(cs []client.Channel) table {
	return table{[]string{"ID", "NAME", "APPS", "IDLE TIMEOUT", "CREATED"}, rowsOf(cs, func(ch client.Channel) []string {
		return []string{ch.ID, ch.Name, strings.Join(ch.AppKeys, ","), ch.SessionIdleTimeout, unixTime(ch.CreateTime)}
	})}
}

// channelIDs completes a channel ID.
func (c *cli) channelIDs() cobra.CompletionFunc {
	return completeNames(c, (*client.Admin).Channels, func(ch client.Channel) string { return ch.ID })
}

func (c *cli) channelCmd() *cobra.Command {
	list := listCommand(c, "List the channels", (*client.Admin).Channels, channelTable)
	get := getCommand(c, "get ID", "Show a channel", (*client.Admin).Channel, channelTable, c.channelIDs())

	var req client.CreateChannel
	create := &cobra.Command{Use: "create NAME", Short: "Create a channel open to some apps", Args: cobra.ExactArgs(1),
		Example: "  gatehouse channel create web --app 3f1c0d2e... --idle-timeout 30m",
		RunE: c.run(func(cmd *cobra.Command, args []string, cn *conn) error {
			req.Name = args[0]
			ch, err := cn.admin.CreateChannel(cmd.Context(), req)
			if err != nil {
				return err
			}
			return printOne(c, cmd, ch, channelTable)
		})}
	create.Flags().StringVar(&req.ID, "id", "", "channel ID, 1 to 32 digits (generated when empty)")
	create.Flags().StringSliceVar(&req.AppKeys, "app", nil, "app key the channel is open to (repeatable)")
	create.Flags().StringVar(&req.SessionIdleTimeout, "idle-timeout", "", "session idle timeout (default 30m)")
	_ = create.RegisterFlagCompletionFunc("app", c.appKeys())

	var upName, upIdle string
	var upApps []string
	var noApps bool
	update := updateCommand(c, "update ID", "Rename a channel, or change its apps or idle timeout", c.channelIDs(),
		func(cmd *cobra.Command) (client.UpdateChannel, error) {
			var u client.UpdateChannel
			if cmd.Flags().Changed("name") {
				u.Name = &upName
			}
			if cmd.Flags().Changed("idle-timeout") {
				u.SessionIdleTimeout = &upIdle
			}
			if cmd.Flags().Changed("app") || noApps {
				apps := nonNil(upApps)
				u.AppKeys = &apps
			}
			if u.Name == nil && u.SessionIdleTimeout == nil && u.AppKeys == nil {
				return u, errors.New("nothing to update: give --name, --app, --no-apps or --idle-timeout")
			}
			return u, nil
		}, (*client.Admin).UpdateChannel, channelTable)
	update.Flags().StringVar(&upName, "name", "", "new name")
	update.Flags().StringSliceVar(&upApps, "app", nil, "app keys replacing the channel's (repeatable)")
	update.Flags().BoolVar(&noApps, "no-apps", false, "close the channel to every app")
	update.Flags().StringVar(&upIdle, "idle-timeout", "", "new session idle timeout")
	update.MarkFlagsMutuallyExclusive("app", "no-apps")

	del := c.actCommand("delete ID", "Delete a channel and end its sessions", "channel %s deleted", (*client.Admin).DeleteChannel, c.channelIDs())
	return c.group("channel", "Manage ccmessaging channels", []string{"channels"}, list, get, create, update, del)
}

func (c *cli) sessionCmd() *cobra.Command {
	var channelID, userID string
	list := listCommand(c, "List the live ccmessaging sessions", func(a *client.Admin, ctx context.Context) ([]client.SessionInfo, error) {
		return a.Sessions(ctx, channelID, userID)
	}, func(ss []client.SessionInfo) table {
		return table{[]string{"CHANNEL", "USER", "NAME", "APP KEY", "CREATED", "LAST ACTIVITY", "ENDS"},
			rowsOf(ss, func(s client.SessionInfo) []string {
				return []string{s.ChannelID, s.UserID, s.UserName, s.AppKey, unixTime(s.CreateTime),
					unixTime(s.LastActivityTime), unixTime(strconv.FormatInt(s.SessionExpiresAt, 10))}
			})}
	})
	list.Flags().StringVar(&channelID, "channel", "", "only the sessions of this channel")
	list.Flags().StringVar(&userID, "user", "", "only the sessions of this user")
	_ = list.RegisterFlagCompletionFunc("channel", c.channelIDs())

	revoke := &cobra.Command{Use: "revoke CHANNEL USER", Aliases: []string{"delete", "kill"}, Short: "End a user's session on a channel",
		Args: cobra.ExactArgs(2),
		RunE: c.run(func(cmd *cobra.Command, args []string, cn *conn) error {
			err := cn.admin.KillSession(cmd.Context(), args[0], args[1])
			if err == nil {
				c.done(cmd, "session of %s on %s ended", args[1], args[0])
			}
			return err
		})}

	var user client.User
	var secret secretSource
	open := &cobra.Command{Use: "open APPKEY", Short: "Open a session for a user as an app would (tokenByAkSk, then applyToken)",
		Long: "Open a ccmessaging session for one user on one channel as the app itself does: exchange the\n" +
			"app's key and secret for an AccessToken (tokenByAkSk), then apply for a ccmessaging-token\n" +
			"(applyToken). Needs no login. Prints the ccmessaging-token.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if user.Name == "" {
				user.Name = user.ID
			}
			f, server, err := c.fabric(cmd, args[0], &secret)
			if err != nil {
				return err
			}
			tok, err := f.Session(user).Token(cmd.Context())
			if err != nil {
				return apiError(err, server)
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		}}
	open.Flags().StringVar(&user.ChannelID, "channel", "", "channel ID")
	open.Flags().StringVar(&user.ID, "user", "", "end user ID")
	open.Flags().StringVar(&user.Name, "user-name", "", "end user display name (default: the user ID)")
	open.Flags().StringVar(&user.Locale, "locale", "en", "end user locale (ISO 639-1, optionally with a region: en_US)")
	_ = open.MarkFlagRequired("channel")
	_ = open.MarkFlagRequired("user")
	secret.flags(open)

	cmd := c.group("session", "List, open and end ccmessaging sessions", []string{"sessions"}, list, revoke)
	cmd.AddCommand(open)
	return cmd
}
