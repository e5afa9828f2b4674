package console

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/store/bolt"
)

// serve runs h on a real listener for the test and returns its answer to
// a GET.
func serve(t *testing.T, h http.HandlerFunc) (int, http.Header, string) {
	t.Helper()
	ts := httptest.NewServer(h)
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/console/x")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// TestRenderFailure: a page whose template fails answers 500 with none of
// the page, not the status it was rendered with and half a page.
func TestRenderFailure(t *testing.T) {
	c := New(Deps{})
	status, _, body := serve(t, func(w http.ResponseWriter, r *http.Request) {
		c.render(w, r, "account", nil, "not an account", nil) // .Account of a string fails
	})
	if status != http.StatusInternalServerError || strings.Contains(body, "<html") || !strings.Contains(body, "Internal server error") {
		t.Fatalf("failed template: %d %q", status, body)
	}
}

// TestAuditTailError: the live tail answers a failure to read the audit
// records in the API's error model with the error's status.
func TestAuditTailError(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "a.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := audit.New(st, slog.New(slog.DiscardHandler), time.Hour)
	defer log.Close()
	c := New(Deps{Audit: log})
	status, h, body := serve(t, func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		cancel() // the store refuses a read for a cancelled request
		r = r.WithContext(ctx)
		r.URL.RawQuery = "after=2000-01-01T00:00:00Z"
		c.auditTail(w, r, nil)
	})
	if status != http.StatusInternalServerError || h.Get("Content-Type") != "application/json" ||
		strings.TrimSpace(body) != `{"errorCode":"500003","errorMessage":"Internal server error"}` {
		t.Fatalf("tail on a failed read: %d %q", status, body)
	}
}
