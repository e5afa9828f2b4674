package httpapi_test

import (
	"strings"
	"testing"
)

// TestMetricsMethodLabelBounded checks that client-chosen methods do not
// become metric label values (each would be kept forever).
func TestMetricsMethodLabelBounded(t *testing.T) {
	ts := start(t, nil)
	for _, m := range []string{"ZZMETHOD1", "ZZMETHOD2"} {
		wantErr(t, ts.call(m, "/nowhere", "", nil), 404, "404001", "Not found")
	}
	m := ts.call("GET", "/metrics", "", nil)
	if m.status != 200 {
		t.Fatalf("metrics: %d", m.status)
	}
	body := string(m.body)
	if strings.Contains(body, "ZZMETHOD") {
		t.Fatal("a client-chosen method became a label value")
	}
	if !strings.Contains(body, `method="other"`) {
		t.Fatal("unknown methods not counted as other")
	}
}
