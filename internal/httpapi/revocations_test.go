package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/server"
)

// sse is an open GET /v4/revocations stream.
type sse struct {
	t      *testing.T
	resp   *http.Response
	lines  chan string
	cancel context.CancelFunc
}

// feedEvent is one event of the stream; a heartbeat comment has Name ":".
type feedEvent struct {
	ID, Name, Data string
}

// openFeed subscribes with token, after lastID unless empty, and fails
// the test unless the answer is 200 text/event-stream.
func (ts *testServer) openFeed(token, lastID string) *sse {
	ts.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.Base+"/v4/revocations", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		ts.t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		resp.Body.Close()
		ts.t.Fatalf("GET /v4/revocations: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sse{t: ts.t, resp: resp, lines: make(chan string), cancel: cancel}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	ts.t.Cleanup(s.close)
	return s
}

func (s *sse) close() {
	s.cancel()
	s.resp.Body.Close()
	for range s.lines {
	}
}

// next returns the next event or heartbeat, failing the test after 10 s.
func (s *sse) next() feedEvent {
	s.t.Helper()
	var ev feedEvent
	timeout := time.After(10 * time.Second)
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				s.t.Fatal("stream ended")
			}
			switch {
			case line == "" && ev.Name != "":
				return ev
			case strings.HasPrefix(line, ":"):
				return feedEvent{Name: ":"}
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.Name = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.Data = line[6:]
			}
		case <-timeout:
			s.t.Fatal("no event within 10s")
		}
	}
}

// until returns the first event named name, skipping others.
func (s *sse) until(name string) feedEvent {
	s.t.Helper()
	for {
		if ev := s.next(); ev.Name == name {
			return ev
		}
	}
}

// TestRevocationFeedPermission: the feed needs a token whose roles grant
// get on the resource revocation; root may.
func TestRevocationFeedPermission(t *testing.T) {
	ts := start(t, nil)
	root := ts.root()
	wantCode(t, ts.call("GET", "/v4/revocations", "", nil), 401, "401204")
	ts.call("POST", "/v4/accounts", root, map[string]any{"name": "dev", "password": "Dev-Passw0rd!", "roles": []string{"developer"}})
	wantCode(t, ts.call("GET", "/v4/revocations", ts.login("dev", "Dev-Passw0rd!"), nil), 403, "403205")

	ts.call("POST", "/v4/roles", root, map[string]any{"name": "verifier",
		"perms": []map[string]any{{"resources": []map[string]string{{"type": "revocation"}}, "verbs": []string{"get"}}}})
	ts.call("POST", "/v4/accounts", root, map[string]any{"name": "svc", "password": "Svc-Passw0rd!", "roles": []string{"verifier"}})
	if ev := ts.openFeed(ts.login("svc", "Svc-Passw0rd!"), "").next(); ev.Name != "snapshot" {
		t.Fatalf("first event %+v, want a snapshot", ev)
	}
	ts.openFeed(root, "").until("snapshot")
}

// TestRevocationFeedEvents: the snapshot holds a logged-out token's id,
// a later logout arrives as a revoke event, a deactivation as an
// account event; a resume after an event id sends what followed and no
// snapshot; a malformed or unknown id gets a snapshot; keys are announced
// on connect and after a rotation.
func TestRevocationFeedEvents(t *testing.T) {
	ts := start(t, nil)
	root := ts.root()
	ts.call("POST", "/v4/accounts", root, map[string]any{"name": "ann", "password": "Ann-Passw0rd!", "roles": []string{"developer"}})
	first := ts.login("ann", "Ann-Passw0rd!")
	wantOK(t, ts.call("DELETE", "/v4/token", first, nil))

	feed := ts.openFeed(root, "")
	snapEv := feed.next()
	var snap struct {
		Revoked  []struct{ JTI string }
		Accounts []struct{ Account string }
	}
	if err := json.Unmarshal([]byte(snapEv.Data), &snap); snapEv.Name != "snapshot" || err != nil || len(snap.Revoked) != 1 {
		t.Fatalf("snapshot %+v (%v)", snapEv, err)
	}
	if ev := feed.next(); ev.Name != "keys" || !strings.Contains(ev.Data, `"status":"active"`) {
		t.Fatalf("after the snapshot %+v, want the keys", ev)
	}

	second := ts.login("ann", "Ann-Passw0rd!")
	wantOK(t, ts.call("DELETE", "/v4/token", second, nil))
	revoke := feed.until("revoke")
	if revoke.ID == snapEv.ID || !strings.Contains(revoke.Data, `"exp":`) {
		t.Fatalf("revoke event %+v after snapshot %s", revoke, snapEv.ID)
	}
	if r := ts.call("PUT", "/v4/accounts/ann", root, map[string]any{"roles": []string{"developer"}, "status": "inactive"}); r.status != 200 {
		t.Fatalf("deactivate: %d %s", r.status, r.body)
	}
	account := feed.until("account")
	if !strings.Contains(account.Data, `"account":"ann"`) || !strings.Contains(account.Data, `"revokedBeforeMs":`) {
		t.Fatalf("account event %+v", account)
	}

	resumed := ts.openFeed(root, revoke.ID)
	if ev := resumed.next(); ev.Name != "account" || ev.ID != account.ID {
		t.Fatalf("resume after %s: %+v, want the account event %s", revoke.ID, ev, account.ID)
	}
	for _, bad := range []string{"garbage", "1.-2", "0.0"} {
		if ev := ts.openFeed(root, bad).next(); ev.Name != "snapshot" {
			t.Fatalf("Last-Event-ID %q: %+v, want a snapshot", bad, ev)
		}
	}

	wantCode(t, ts.call("POST", "/v4/keys/rotate", "", nil), 401, "401204")
	if r := ts.call("POST", "/v4/keys/rotate", root, nil); r.status != 200 {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	}
	// The new key is announced while it waits to sign.
	if ev := feed.until("keys"); !strings.Contains(ev.Data, `"status":"pending"`) {
		t.Fatalf("keys after rotation %+v", ev)
	}
}

// TestRevocationFeedHeartbeat: an idle stream carries a heartbeat
// comment every FeedHeartbeat.
func TestRevocationFeedHeartbeat(t *testing.T) {
	ts := start(t, func(c *server.Config) { c.FeedHeartbeat = 20 * time.Millisecond })
	feed := ts.openFeed(ts.root(), "")
	feed.until("keys")
	for range 3 {
		if ev := feed.next(); ev.Name != ":" {
			t.Fatalf("idle stream sent %+v, want a heartbeat", ev)
		}
	}
}
