package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestLogFlags(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger(&buf, "warn", "text")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("quiet")
	log.Warn("loud", "k", "v")
	if got := buf.String(); strings.Contains(got, "quiet") || !strings.Contains(got, "level=WARN msg=loud k=v") {
		t.Fatalf("warn/text log: %q", got)
	}
	buf.Reset()
	if log, err = newLogger(&buf, "debug", "json"); err != nil {
		t.Fatal(err)
	}
	log.Debug("detail")
	if got := buf.String(); !strings.Contains(got, `"level":"DEBUG","msg":"detail"`) {
		t.Fatalf("debug/json log: %q", got)
	}
	for _, bad := range [][2]string{{"verbose", "json"}, {"info", "xml"}} {
		if _, err := newLogger(&buf, bad[0], bad[1]); err == nil {
			t.Errorf("newLogger(%q, %q) accepted", bad[0], bad[1])
		}
	}
}
