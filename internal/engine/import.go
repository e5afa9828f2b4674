package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/keyring"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/store"
)

// ImportedAccount is an account brought from another system (Service
// Center). PasswordHash is kept as it is: a legacy hash is replaced by an
// argon2id hash at the account's next login.
type ImportedAccount struct {
	ID           string
	Name         string
	PasswordHash string
	Roles        []string
	Status       string // active or inactive
	CreateTime   int64  // unix seconds
	UpdateTime   int64
}

// ImportedRole is a role brought from another system. Its permissions are
// stored verbatim, without the API's validation: resource types Gatehouse
// does not know are kept (and grant nothing until it knows them).
type ImportedRole struct {
	ID         string
	Name       string
	Perms      []authz.Permission
	CreateTime int64
	UpdateTime int64
}

// ImportedLock is a ban of a name typed at login from a client address.
type ImportedLock struct {
	Name      string
	IP        string
	ReleaseAt time.Time
}

// ImportRecords is what Import writes: roles first, then accounts, then
// locks.
type ImportRecords struct {
	Roles    []ImportedRole
	Accounts []ImportedAccount
	Locks    []ImportedLock
}

// ImportOptions configure Import.
type ImportOptions struct {
	// Overwrite replaces existing records that differ from the imported
	// ones; without it they are reported as conflicts and left alone.
	Overwrite bool
	// DryRun reports what would change and writes nothing.
	DryRun bool
	// Now is the clock [time.Now].
	Now func() time.Time
}

// Outcomes of one imported record, in ImportResult.Outcome.
const (
	ImportCreated   = "created"   // absent before, written
	ImportReplaced  = "replaced"  // differed, overwritten (Overwrite)
	ImportUnchanged = "unchanged" // already as imported
	ImportConflict  = "conflict"  // differs, left alone
	ImportSkipped   = "skipped"   // not imported (see Detail)
)

// ImportResult is the outcome of one record. Detail never holds a hash.
type ImportResult struct {
	Kind    string // "role", "account" or "lock"
	Name    string
	Outcome string
	Detail  string
}

// ImportReport lists the outcome of every record, in import order.
type ImportReport struct {
	Results []ImportResult
}

// Count returns how many records of kind had outcome.
func (r ImportReport) Count(kind, outcome string) int {
	n := 0
	for _, res := range r.Results {
		if res.Kind == kind && res.Outcome == outcome {
			n++
		}
	}
	return n
}

// Changed reports whether the import wrote (or, dry, would write) any
// record.
func (r ImportReport) Changed() bool {
	for _, res := range r.Results {
		if res.Outcome == ImportCreated || res.Outcome == ImportReplaced {
			return true
		}
	}
	return false
}

// Import writes recs into st in the engine's encodings, each record
// atomically, so running replicas pick them up through the change feed.
// It needs no running engine: it works on a store no server has opened
// yet. Rules:
//
//   - A record absent from st is created; one equal to the imported one
//     (accounts: id, hash, roles, status; roles: permissions; locks: ban
//     end) is unchanged; any other is a conflict, left alone unless
//     opts.Overwrite. So a second run changes nothing.
//   - A built-in role (admin, developer) is never written: the server
//     keeps Gatehouse's definition of it at every start. One whose
//     permissions Gatehouse's definition covers (as it covers Service
//     Center's) is unchanged; another is skipped, saying so.
//   - An imported account's revocation watermark lets through the tokens
//     its previous system issued that are still live (see issuedAtMs):
//     it is the import instant minus MaxRequestedTTL, or the existing
//     record's when that is later and the record is the same account
//     (same id). Any later change of the account moves it past them.
//   - An account's roles must exist in st or among recs.Roles; a lock
//     whose ban has ended is skipped.
//
// The error names the record that failed; the report holds the outcome
// of every record up to it.
func Import(ctx context.Context, st store.Store, recs ImportRecords, opts ImportOptions) (ImportReport, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	im := importer{st: st, opts: opts, now: opts.Now()}
	for _, r := range recs.Roles {
		if err := im.role(ctx, r); err != nil {
			return im.report, fmt.Errorf("role %s: %w", r.Name, err)
		}
	}
	for _, a := range recs.Accounts {
		if err := im.account(ctx, a, recs.Roles); err != nil {
			return im.report, fmt.Errorf("account %s: %w", a.Name, err)
		}
	}
	if len(recs.Locks) > 0 {
		secret, err := keyring.LookupSharedSecret(ctx, st, lockSecretName)
		if errors.Is(err, store.ErrNotFound) && !opts.DryRun {
			secret, err = keyring.SharedSecret(ctx, st, lockSecretName)
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return im.report, fmt.Errorf("locks: %w", err)
		}
		for _, l := range recs.Locks {
			// Without a secret (dry run on a new store) no lock exists yet.
			key := ""
			if secret != nil {
				key = lockPrefix + lockKey(secret, l.Name, l.IP)
			}
			if err := im.lock(ctx, key, l); err != nil {
				return im.report, fmt.Errorf("lock %s::%s: %w", l.Name, l.IP, err)
			}
		}
	}
	return im.report, nil
}

// importer carries the state of one Import.
type importer struct {
	st     store.Store
	opts   ImportOptions
	now    time.Time
	report ImportReport
}

// decision is what to do with one key given its current item: write next
// (nil: write nothing) and report outcome and detail.
type decision struct {
	next    *store.Item
	outcome string
	detail  string
}

// put applies decide to key atomically (or, dry, to a read of key) and
// records the outcome.
func (im *importer) put(ctx context.Context, kind, name, key string, decide func(cur *store.Item) (decision, error)) error {
	var d decision
	if im.opts.DryRun || key == "" {
		var cur *store.Item
		if key != "" {
			it, err := im.st.Get(ctx, key)
			switch {
			case err == nil:
				cur = &it
			case !errors.Is(err, store.ErrNotFound):
				return err
			}
		}
		var err error
		if d, err = decide(cur); err != nil {
			return err
		}
	} else {
		_, err := im.st.Update(ctx, key, func(cur *store.Item) (*store.Item, error) {
			var err error
			if d, err = decide(cur); err != nil {
				return nil, err
			}
			if d.next == nil {
				return nil, errNoChange
			}
			return d.next, nil
		})
		if err != nil && !errors.Is(err, errNoChange) {
			return err
		}
	}
	im.report.Results = append(im.report.Results, ImportResult{Kind: kind, Name: name, Outcome: d.outcome, Detail: d.detail})
	return nil
}

// differs decides on a record that exists and differs from the imported
// one: replaced with Overwrite, else a conflict.
func (im *importer) differs(next *store.Item, detail string) decision {
	if im.opts.Overwrite {
		return decision{next: next, outcome: ImportReplaced, detail: detail}
	}
	return decision{outcome: ImportConflict, detail: detail + "; left alone (--overwrite replaces it)"}
}

func (im *importer) role(ctx context.Context, r ImportedRole) error {
	if !password.ValidName(r.Name) {
		return errors.New("invalid role name")
	}
	rec := roleRecord{ID: r.ID, Name: r.Name, Perms: nonNil(r.Perms), CreateTime: r.CreateTime, UpdateTime: r.UpdateTime}
	next := &store.Item{Value: store.EncodeJSON(&rec)}
	want := store.EncodeJSON(rec.Perms)
	if isBuiltinRole(r.Name) {
		d := decision{outcome: ImportUnchanged, detail: "built-in role; Gatehouse's definition covers it"}
		if !covers(builtinPerms(r.Name), r.Perms) {
			d = decision{outcome: ImportSkipped, detail: "built-in role grants more than Gatehouse's definition, which the server keeps; grant the rest through another role"}
		}
		im.report.Results = append(im.report.Results, ImportResult{Kind: "role", Name: r.Name, Outcome: d.outcome, Detail: d.detail})
		return nil
	}
	return im.put(ctx, "role", r.Name, rolePrefix+r.Name, func(cur *store.Item) (decision, error) {
		if cur == nil {
			return decision{next: next, outcome: ImportCreated}, nil
		}
		var have roleRecord
		if err := json.Unmarshal(cur.Value, &have); err != nil {
			return decision{}, fmt.Errorf("stored role unreadable: %w", err)
		}
		if bytes.Equal(want, store.EncodeJSON(nonNil(have.Perms))) {
			return decision{outcome: ImportUnchanged}, nil
		}
		return im.differs(next, "exists with other permissions"), nil
	})
}

// covers reports whether perms grant every verb on every resource that
// other grants.
func covers(perms, other []authz.Permission) bool {
	for _, p := range other {
		for _, r := range p.Resources {
			for _, v := range p.Verbs {
				if !authz.Allows(perms, r.Type, v, r.Labels) {
					return false
				}
			}
		}
	}
	return true
}

func (im *importer) account(ctx context.Context, a ImportedAccount, roles []ImportedRole) error {
	if !password.ValidName(a.Name) {
		return errors.New("invalid account name")
	}
	if a.PasswordHash == "" {
		return errors.New("no password hash")
	}
	status := a.Status
	if status == "" {
		status = StatusActive
	}
	if !validStatus(status) {
		return fmt.Errorf("status %q is neither active nor inactive", status)
	}
	for _, name := range a.Roles {
		imported := slices.ContainsFunc(roles, func(r ImportedRole) bool { return r.Name == name })
		if imported || isBuiltinRole(name) {
			continue
		}
		if _, err := im.st.Get(ctx, rolePrefix+name); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("role %s does not exist", name)
		} else if err != nil {
			return err
		}
	}
	watermark := im.now.Add(-MaxRequestedTTL).UnixMilli()
	return im.put(ctx, "account", a.Name, accountPrefix+a.Name, func(cur *store.Item) (decision, error) {
		rec := accountRecord{ID: a.ID, Name: a.Name, PasswordHash: a.PasswordHash, Roles: dedupe(a.Roles),
			Status: status, CreateTime: a.CreateTime, UpdateTime: a.UpdateTime, RevokedBefore: watermark}
		if cur == nil {
			return decision{next: &store.Item{Value: store.EncodeJSON(&rec)}, outcome: ImportCreated}, nil
		}
		var have accountRecord
		if err := json.Unmarshal(cur.Value, &have); err != nil {
			return decision{}, fmt.Errorf("stored account unreadable: %w", err)
		}
		if have.ID == rec.ID && have.PasswordHash == rec.PasswordHash && have.Status == rec.Status && slices.Equal(have.Roles, rec.Roles) {
			return decision{outcome: ImportUnchanged}, nil
		}
		detail := "exists as another account"
		if have.ID == rec.ID {
			// The same account, changed since it was imported: changes
			// that revoked its tokens stay in force.
			detail = "changed since it was imported"
			rec.RevokedBefore = max(rec.RevokedBefore, have.RevokedBefore)
		}
		return im.differs(&store.Item{Value: store.EncodeJSON(&rec)}, detail), nil
	})
}

func (im *importer) lock(ctx context.Context, key string, l ImportedLock) error {
	name := l.Name + "::" + l.IP
	if !im.now.Before(l.ReleaseAt) {
		im.report.Results = append(im.report.Results, ImportResult{Kind: "lock", Name: name, Outcome: ImportSkipped, Detail: "ban already ended"})
		return nil
	}
	rec := lockRecord{Failures: []int64{im.now.UnixNano()}, BannedUntil: l.ReleaseAt.UnixNano()}
	next := &store.Item{Value: store.EncodeJSON(&rec), Expires: l.ReleaseAt}
	return im.put(ctx, "lock", name, key, func(cur *store.Item) (decision, error) {
		if cur == nil {
			return decision{next: next, outcome: ImportCreated}, nil
		}
		var have lockRecord
		_ = json.Unmarshal(cur.Value, &have)
		if have.BannedUntil == rec.BannedUntil {
			return decision{outcome: ImportUnchanged}, nil
		}
		return im.differs(next, "the name and address have other failures or another ban"), nil
	})
}
