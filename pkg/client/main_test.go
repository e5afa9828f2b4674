package client_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"

	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/pkg/client"
)

// TestMain starts the Gatehouse the examples use.
func TestMain(m *testing.M) {
	os.Exit(runWithGatehouse(m))
}

func runWithGatehouse(m *testing.M) int {
	dir, err := os.MkdirTemp("", "gatehouse-example")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.RootPassword, cfg.RateLimit = "127.0.0.1:0", dir, rootPW, 0
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv, err := server.Start(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer srv.Shutdown(context.Background())
	gatehouseURL = "http://" + srv.Addr()
	if err := exampleSetup(); err != nil {
		fmt.Fprintln(os.Stderr, "example setup:", err)
		return 1
	}
	return m.Run()
}

// exampleSetup creates the examples' app and channel.
func exampleSetup() error {
	root := client.NewEngine(client.EngineConfig{BaseURL: gatehouseURL, Name: "root", Password: rootPW})
	if err := adminCall(root, "POST", gatehouseURL+"/v4/apps", map[string]string{"name": "example"}, &exampleApp); err != nil {
		return err
	}
	var ch struct{ ID string }
	in := map[string]any{"name": "example", "appKeys": []string{exampleApp.AppKey}}
	if err := adminCall(root, "POST", gatehouseURL+"/v4/channels", in, &ch); err != nil {
		return err
	}
	exampleChannel = ch.ID
	return nil
}
