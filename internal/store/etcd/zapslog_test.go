package etcd

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"

	"go.uber.org/zap"
)

func TestZapLogsGoToSlog(t *testing.T) {
	var buf bytes.Buffer
	h := slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})
	log := zapLogger(h).Named("client").With(zap.String("endpoint", "e1"))
	log.Info("dropped below the level")
	log.Warn("retrying", zap.Int("attempt", 2), zap.Error(errors.New("no leader")))
	log.Error("failed")

	var lines []map[string]any
	dec := json.NewDecoder(&buf)
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 {
		t.Fatalf("want 2 lines at warn and above, got %v", lines)
	}
	w := lines[0]
	if w["level"] != "WARN" || w["msg"] != "retrying" || w["logger"] != "client" || w["endpoint"] != "e1" ||
		w["attempt"] != 2.0 || w["error"] != "no leader" {
		t.Fatalf("warn line %v", w)
	}
	if lines[1]["level"] != "ERROR" || lines[1]["msg"] != "failed" {
		t.Fatalf("error line %v", lines[1])
	}
}
