package httpapi

import (
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/engine"
)

// DefaultFeedHeartbeat is how often GET /v4/revocations writes a
// heartbeat comment when Options.FeedHeartbeat is zero.
const DefaultFeedHeartbeat = 10 * time.Second

func (s *Server) revocationRoutes() {
	s.mux.HandleFunc("GET /v4/revocations", s.authed(authz.ResourceRevocation, s.revocations))
}

// revocations streams the revocation feed as Server-Sent Events
// (docs/api.md): first a snapshot or, with a Last-Event-ID the replica
// can resume from, the changes after it; then every change, and a
// heartbeat comment every s.heartbeat while the replica follows the
// store. Each write must finish within two heartbeats; a subscriber too
// far behind is dropped by the feed and the stream ends, to be resumed.
func (s *Server) revocations(w http.ResponseWriter, r *http.Request) {
	sub, first := s.Engine.Feed().Subscribe(r.Header.Get("Last-Event-ID"))
	defer sub.Close()
	rc := http.NewResponseController(w)
	// The server's read and write timeouts are for requests that end.
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(2 * s.heartbeat))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	for _, ev := range first {
		if !write(sseEvent(ev)) {
			return
		}
	}
	if !write(nil) {
		return
	}
	tick := time.NewTicker(s.heartbeat)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-sub.Events():
			if !ok || !write(sseEvent(ev)) {
				return
			}
		case <-tick.C:
			// A replica cut off from the store says nothing, so that
			// verifiers see the feed go stale.
			if s.Engine.Healthy() && !write([]byte(": heartbeat\n\n")) {
				return
			}
		case <-r.Context().Done():
			return
		case <-s.streamsDone:
			return
		}
	}
}

// sseEvent is the text of one event; its data is one line of JSON.
func sseEvent(ev engine.FeedEvent) []byte {
	b := make([]byte, 0, len(ev.ID)+len(ev.Name)+len(ev.Data)+24)
	b = append(b, "id: "...)
	b = append(b, ev.ID...)
	b = append(b, "\nevent: "...)
	b = append(b, ev.Name...)
	b = append(b, "\ndata: "...)
	b = append(b, ev.Data...)
	return append(b, "\n\n"...)
}

// CloseStreams ends every event stream, so that a graceful shutdown does
// not wait for them.
func (s *Server) CloseStreams() { s.closeStreams.Do(func() { close(s.streamsDone) }) }
