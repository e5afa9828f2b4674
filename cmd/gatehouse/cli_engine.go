package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/pkg/client"
)

func accountTable(as []client.Account) table {
	return table{[]string{"NAME", "ROLES", "STATUS", "CREATED"}, rowsOf(as, func(a client.Account) []string {
		return []string{a.Name, strings.Join(a.Roles, ","), a.Status, unixTime(a.CreateTime)}
	})}
}

// accountNames completes an account name.
func (c *cli) accountNames() cobra.CompletionFunc {
	return completeNames(c, (*client.Admin).Accounts, func(a client.Account) string { return a.Name })
}

func (c *cli) accountCmd() *cobra.Command {
	list := listCommand(c, "List the accounts", (*client.Admin).Accounts, accountTable)
	get := getCommand(c, "get NAME", "Show an account", (*client.Admin).Account, accountTable, c.accountNames())

	var roles []string
	var status string
	var pw passwordSource
	create := &cobra.Command{Use: "create NAME", Short: "Create an account", Args: cobra.ExactArgs(1),
		Example: "  printf '%s\\n' \"$PASSWORD\" | gatehouse account create alice --role developer --password-stdin",
		RunE: c.run(func(cmd *cobra.Command, args []string, cn *conn) error {
			p, err := pw.read(cmd, "Password of "+args[0]+": ")
			if err != nil {
				return err
			}
			err = cn.admin.CreateAccount(cmd.Context(), client.CreateAccount{Name: args[0], Password: p, Roles: roles, Status: status})
			if err == nil {
				c.done(cmd, "account %s created", args[0])
			}
			return err
		})}
	create.Flags().StringSliceVar(&roles, "role", nil, "role of the account (repeatable, 1 to 5)")
	create.Flags().StringVar(&status, "status", "", "active or inactive (default active)")
	_ = create.MarkFlagRequired("role")
	pw.flags(create, "account's password")

	var upRoles []string
	var upStatus string
	update := &cobra.Command{Use: "update NAME", Short: "Change an account's roles or status", Args: cobra.ExactArgs(1),
		ValidArgsFunction: c.accountNames(),
		RunE: c.run(func(cmd *cobra.Command, args []string, cn *conn) error {
			var req client.UpdateAccount
			if cmd.Flags().Changed("role") {
				req.Roles = upRoles
			}
			if cmd.Flags().Changed("status") {
				req.Status = &upStatus
			}
			if req.Roles == nil && req.Status == nil {
				return errors.New("nothing to update: give --role or --status")
			}
			if req.Roles == nil {
				// The API takes the roles with every update, as Service
				// Center does: a status change keeps those the account has.
				a, err := cn.admin.Account(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				req.Roles = a.Roles
			}
			err := cn.admin.UpdateAccount(cmd.Context(), args[0], req)
			if err == nil {
				c.done(cmd, "account %s updated", args[0])
			}
			return err
		})}
	update.Flags().StringSliceVar(&upRoles, "role", nil, "roles replacing the account's (repeatable)")
	update.Flags().StringVar(&upStatus, "status", "", "active or inactive")

	del := c.actCommand("delete NAME", "Delete an account", "account %s deleted", (*client.Admin).DeleteAccount, c.accountNames())

	var ppw passwordSource
	passwd := &cobra.Command{Use: "passwd [NAME]", Short: "Change a password (your own by default)",
		Long: "Change a password, your own by default. Your own needs the current password first: with\n" +
			"--password-stdin the first line of stdin is the current password, the second the new one.",
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: c.accountNames(),
		RunE: c.run(func(cmd *cobra.Command, args []string, cn *conn) error {
			name := cn.name
			if len(args) == 1 {
				name = args[0]
			}
			var current string
			if name == cn.name {
				var err error
				if current, err = ppw.read(cmd, "Current password: "); err != nil {
					return err
				}
			}
			p, err := ppw.read(cmd, "New password of "+name+": ")
			if err != nil {
				return err
			}
			if err := cn.admin.ChangePassword(cmd.Context(), name, current, p); err != nil {
				return err
			}
			c.done(cmd, "password of %s changed", name)
			if name == cn.name {
				fmt.Fprintln(cmd.ErrOrStderr(), "The change revoked your tokens: run gatehouse login again.")
			}
			return nil
		})}
	ppw.flags(passwd, "password")

	return c.group("account", "Manage engine accounts", []string{"accounts"}, list, get, create, update, del, passwd)
}

func roleTable(rs []client.Role) table {
	return table{[]string{"NAME", "PERMISSIONS", "CREATED"}, rowsOf(rs, func(r client.Role) []string {
		return []string{r.Name, formatPerms(r.Perms), unixTime(r.CreateTime)}
	})}
}

// formatPerms renders permissions as --perm takes them, separated by
// spaces.
func formatPerms(ps []client.Permission) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		types := namesOf(p.Resources, func(r client.Resource) string { return r.Type })
		out[i] = strings.Join(types, ",") + ":" + strings.Join(p.Verbs, ",")
	}
	return strings.Join(out, " ")
}

// parsePerms reads --perm values: TYPES:VERBS, each a comma-separated
// list, e.g. app,channel:get,create.
func parsePerms(specs []string) ([]client.Permission, error) {
	out := make([]client.Permission, 0, len(specs))
	for _, s := range specs {
		types, verbs, ok := strings.Cut(s, ":")
		if !ok || types == "" || verbs == "" {
			return nil, fmt.Errorf("--perm %q: want TYPES:VERBS, e.g. app,channel:get,create", s)
		}
		p := client.Permission{Verbs: strings.Split(verbs, ",")}
		for _, t := range strings.Split(types, ",") {
			p.Resources = append(p.Resources, client.Resource{Type: t})
		}
		out = append(out, p)
	}
	return out, nil
}

// roleNames completes a role name.
func (c *cli) roleNames() cobra.CompletionFunc {
	return completeNames(c, (*client.Admin).Roles, func(r client.Role) string { return r.Name })
}

func (c *cli) roleCmd() *cobra.Command {
	list := listCommand(c, "List the roles", (*client.Admin).Roles, roleTable)
	get := getCommand(c, "get NAME", "Show a role", (*client.Admin).Role, roleTable, c.roleNames())
	write := func(verb string, f func(a *client.Admin, ctx context.Context, name string, ps []client.Permission) error) *cobra.Command {
		var specs []string
		cmd := &cobra.Command{Use: verb + " NAME", Args: cobra.ExactArgs(1),
			RunE: c.run(func(cmd *cobra.Command, args []string, cn *conn) error {
				ps, err := parsePerms(specs)
				if err != nil {
					return err
				}
				if err := f(cn.admin, cmd.Context(), args[0], ps); err != nil {
					return err
				}
				c.done(cmd, "role %s %sd", args[0], verb)
				return nil
			})}
		cmd.Flags().StringArrayVar(&specs, "perm", nil, "permission TYPES:VERBS, e.g. app,channel:get,create (repeatable)")
		_ = cmd.MarkFlagRequired("perm")
		return cmd
	}
	create := write("create", (*client.Admin).CreateRole)
	create.Short = "Create a role"
	create.Example = "  gatehouse role create auditor --perm audit,key:get"
	update := write("update", (*client.Admin).UpdateRole)
	update.Short = "Replace a role's permissions"
	update.ValidArgsFunction = c.roleNames()
	del := c.actCommand("delete NAME", "Delete a role no account holds", "role %s deleted", (*client.Admin).DeleteRole, c.roleNames())
	return c.group("role", "Manage roles and their permissions", []string{"roles"}, list, get, create, update, del)
}

func (c *cli) lockCmd() *cobra.Command {
	list := listCommand(c, "List failed-login counters and bans", (*client.Admin).Locks, func(ls []client.Lock) table {
		return table{[]string{"KEY", "STATUS", "RELEASE"}, rowsOf(ls, func(l client.Lock) []string {
			return []string{l.Key, l.Status, unixTime(strconv.FormatInt(l.ReleaseAt, 10))}
		})}
	})
	clear := c.actCommand("clear NAME", "Clear every lock and failed attempt of an account", "locks of %s cleared", (*client.Admin).ClearLocks, c.accountNames())
	clear.Aliases = []string{"unlock", "delete"}
	return c.group("lock", "List and clear login lockouts", []string{"locks"}, list, clear)
}

func keyTable(ks []client.Key) table {
	return table{[]string{"ID", "ALGORITHM", "BITS", "STATUS", "CREATED", "ACTIVATES"}, rowsOf(ks, func(k client.Key) []string {
		activates := ""
		if !k.Activates.IsZero() {
			activates = k.Activates.UTC().Format(time.RFC3339)
		}
		return []string{k.ID, k.Algorithm, strconv.Itoa(k.Bits), k.Status, k.Created.UTC().Format(time.RFC3339), activates}
	})}
}

func (c *cli) keyCmd() *cobra.Command {
	list := listCommand(c, "List the signing keys", (*client.Admin).Keys, keyTable)
	var req client.RotateKeyRequest
	rotate := &cobra.Command{Use: "rotate", Short: "Make a new signing key, published before it signs; the old one keeps verifying", Args: cobra.NoArgs,
		Long: "Make a new signing key. It is in the JWKS at once and signs after the server's --key-prepublish time,\n" +
			"so verifiers know it before its first token. --immediate switches at once (key compromise);\n" +
			"--revoke with it makes every earlier key, and every token it signed, stop verifying at once.",
		RunE: c.run(func(cmd *cobra.Command, _ []string, cn *conn) error {
			if req.Revoke && !req.Immediate {
				return errors.New("--revoke needs --immediate")
			}
			k, err := cn.admin.RotateKey(cmd.Context(), req)
			if err != nil {
				return err
			}
			return printOne(c, cmd, k, keyTable)
		})}
	rotate.Flags().BoolVar(&req.Immediate, "immediate", false, "sign with the new key at once instead of after the pre-publication time (emergency)")
	rotate.Flags().BoolVar(&req.Revoke, "revoke", false, "with --immediate: every earlier key and every token it signed stop verifying at once")
	return c.group("key", "List and rotate the signing keys", []string{"keys"}, list, rotate)
}

func auditTable(rs []client.AuditRecord) table {
	return table{[]string{"TIME", "ACTOR", "IP", "ACTION", "TARGET", "OUTCOME", "DETAIL"}, rowsOf(rs, func(r client.AuditRecord) []string {
		return []string{r.Time.UTC().Format(time.RFC3339), r.Actor, r.IP, r.Action, r.Target, r.Outcome, r.Detail}
	})}
}

func (c *cli) auditCmd() *cobra.Command {
	var limit int
	list := listCommand(c, "Show the newest audit records, newest first", func(a *client.Admin, ctx context.Context) ([]client.AuditRecord, error) {
		return a.Audit(ctx, limit)
	}, auditTable)
	list.Flags().IntVar(&limit, "limit", 100, "how many records, 1 to 1000")

	var first int
	var interval time.Duration
	tail := &cobra.Command{Use: "tail", Short: "Show the newest audit records, then new ones as they come, oldest first", Args: cobra.NoArgs,
		Long: "Show the newest audit records, then poll for new ones until interrupted, oldest first. JSON\n" +
			"prints one record per line, YAML one document per record.",
		RunE: c.run(func(cmd *cobra.Command, _ []string, cn *conn) error {
			return c.tailAudit(cmd, cn, first, interval)
		})}
	tail.Flags().IntVar(&first, "limit", 10, "how many past records to show first, 1 to 1000")
	tail.Flags().DurationVar(&interval, "interval", 2*time.Second, "how often to ask for new records")
	return c.group("audit", "Read the audit log", nil, list, tail)
}

// tailAudit prints the newest first records, then every record newer than
// those, polling every interval until the command's context ends.
func (c *cli) tailAudit(cmd *cobra.Command, cn *conn, first int, interval time.Duration) error {
	ctx := cmd.Context()
	var last time.Time
	seen := map[client.AuditRecord]bool{} // the records of time last, printed already
	header := true
	limit := first
	for {
		rs, err := cn.admin.Audit(ctx, limit)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		var fresh []client.AuditRecord
		for i := len(rs) - 1; i >= 0; i-- { // oldest first
			r := rs[i]
			if r.Time.Before(last) || seen[r] {
				continue
			}
			if r.Time.After(last) {
				last, seen = r.Time, map[client.AuditRecord]bool{}
			}
			seen[r] = true
			fresh = append(fresh, r)
		}
		if err := c.printStream(cmd, fresh, header); err != nil {
			return err
		}
		header, limit = false, 1000
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// printStream prints records of a stream: table rows (the header first
// when header is set), JSON lines or YAML documents.
func (c *cli) printStream(cmd *cobra.Command, rs []client.AuditRecord, header bool) error {
	w := cmd.OutOrStdout()
	switch c.output {
	case "json", "yaml":
		for _, r := range rs {
			if c.output == "yaml" {
				fmt.Fprintln(w, "---")
				if err := c.print(cmd, r, table{}); err != nil {
					return err
				}
				continue
			}
			b, err := json.Marshal(r)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "%s\n", b)
		}
		return nil
	}
	t := auditTable(rs)
	if !header {
		t.header = nil
	}
	return writeTable(w, t)
}
