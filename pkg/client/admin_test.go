package client_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/backup"
	"github.com/gatehouse/gatehouse/pkg/client"
)

// The admin client works through an Engine (which logs in and renews) and
// through a bare token alike; API errors are *client.Error.
func TestAdminThroughEngineAndToken(t *testing.T) {
	ctx := context.Background()
	e := client.NewEngine(client.EngineConfig{BaseURL: gatehouseURL, Name: "root", Password: rootPW})
	a := client.NewAdmin(gatehouseURL, e)
	if err := a.CreateRole(ctx, "admin-test", []client.Permission{{Resources: []client.Resource{{Type: "app"}}, Verbs: []string{"get"}}}); err != nil {
		t.Fatal(err)
	}
	defer a.DeleteRole(ctx, "admin-test")
	r, err := a.Role(ctx, "admin-test")
	if err != nil || len(r.Perms) != 1 || r.Perms[0].Resources[0].Type != "app" {
		t.Fatalf("role %+v, %v", r, err)
	}

	tok, err := client.Login(ctx, nil, gatehouseURL, "root", rootPW, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := client.NewAdmin(gatehouseURL, client.BearerToken(nil, tok))
	apps, err := b.Apps(ctx)
	if err != nil || len(apps) == 0 {
		t.Fatalf("apps %+v, %v", apps, err)
	}
	if err := client.Logout(ctx, nil, gatehouseURL, tok); err != nil {
		t.Fatal(err)
	}
	var ae *client.Error
	if _, err := b.Apps(ctx); !errors.As(err, &ae) || ae.Status != 401 || ae.Code != "401201" {
		t.Fatalf("after logout: %v", err)
	}
}

// Backup streams the whole store to a writer; without the backup
// permission it is an *Error 403.
func TestAdminBackup(t *testing.T) {
	ctx := context.Background()
	a := client.NewAdmin(gatehouseURL, client.NewEngine(client.EngineConfig{BaseURL: gatehouseURL, Name: "root", Password: rootPW}))
	var buf bytes.Buffer
	rev, n, err := a.Backup(ctx, &buf)
	if err != nil {
		t.Fatal(err)
	}
	h, items, err := backup.Read(bytes.NewReader(buf.Bytes()))
	if err != nil || n != int64(buf.Len()) || rev != h.Revision || rev == 0 || len(items) == 0 {
		t.Fatalf("revision %d, %d bytes of %d, header %+v, %d items, %v", rev, n, buf.Len(), h, len(items), err)
	}

	if err := a.CreateAccount(ctx, client.CreateAccount{Name: "backup-dev", Password: "Passw0rd!bd", Roles: []string{"admin"}}); err != nil {
		t.Fatal(err)
	}
	defer a.DeleteAccount(ctx, "backup-dev")
	dev := client.NewAdmin(gatehouseURL, client.NewEngine(client.EngineConfig{BaseURL: gatehouseURL, Name: "backup-dev", Password: "Passw0rd!bd"}))
	buf.Reset()
	var ae *client.Error
	if _, _, err := dev.Backup(ctx, &buf); !errors.As(err, &ae) || ae.Status != 403 || ae.Code != "403205" || buf.Len() != 0 {
		t.Fatalf("an admin without the backup permission: %v, %d bytes", err, buf.Len())
	}
}
