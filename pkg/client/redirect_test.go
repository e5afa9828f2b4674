package client

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRedirectDropsSessionHeaders checks that the ccmessaging credentials
// do not follow a redirect to another host.
func TestRedirectDropsSessionHeaders(t *testing.T) {
	var got http.Header
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	defer other.Close()
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/elsewhere", http.StatusFound)
	}))
	defer first.Close()
	req, _ := http.NewRequest("GET", first.URL, nil)
	req.Header.Set(SessionTokenHeader, "session-token")
	req.Header.Set(AppKeyHeader, "app")
	resp, err := httpClient(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got == nil || got.Get(SessionTokenHeader) != "" || got.Get(AppKeyHeader) != "" {
		t.Fatalf("credentials followed the redirect: %v", got)
	}
}
