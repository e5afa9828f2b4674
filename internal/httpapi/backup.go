package httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/store/backup"
)

// RevisionHeader carries the store revision of a backup (GET /v4/backup).
const RevisionHeader = "X-Gatehouse-Backup-Revision"

// backupWriteTime bounds how long a client may take to read a backup; the
// server's write timeout, meant for small answers, would cut a large one.
const backupWriteTime = time.Hour

func (s *Server) backupRoutes() {
	s.mux.HandleFunc("GET /v4/backup", s.authed(authz.ResourceBackup, s.backup))
}

// backup answers GET /v4/backup: a consistent snapshot of the whole
// store in the store-neutral backup format (package backup), streamed as
// it is read. The answer starts once the store answered with the
// snapshot's revision, so a store error before then is an error answer;
// an error after that cuts the stream, which the file's missing end makes
// unusable. The snapshot stays open until the client has read it all; a
// shutdown of the server (CloseStreams) cuts the stream, so that it does
// not wait for a slow client to close the store.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	c := s.caller(r)
	rec := audit.Record{Actor: c.Account, IP: c.IP, Action: "store.backup", Outcome: audit.Failure}
	defer func() { s.Audit.Record(rec) }()
	rc := http.NewResponseController(w)
	ctx, cancel := context.WithCancel(r.Context())
	stopped := make(chan struct{})
	defer func() { cancel(); <-stopped }()
	go func() {
		defer close(stopped)
		select {
		case <-s.streamsDone:
			cancel()
			_ = rc.SetWriteDeadline(time.Now()) // a write blocked on the client returns
		case <-ctx.Done():
		}
	}()
	started := false
	h, err := backup.Snapshot(ctx, s.Store, s.storeBackend, s.version, func(h backup.Header) (io.Writer, error) {
		started = true
		_ = rc.SetWriteDeadline(time.Now().Add(backupWriteTime))
		w.Header().Set("Content-Type", backup.ContentType)
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="gatehouse-%d.backup"`, h.Revision))
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set(RevisionHeader, strconv.FormatInt(h.Revision, 10))
		return w, nil
	})
	switch {
	case err != nil && !started:
		s.errs.Write(w, r, apierror.FromStore(err))
	case err != nil:
		rec.Detail = fmt.Sprintf("revision %d, cut off: %v", h.Revision, err)
	default:
		rec.Outcome, rec.Detail = audit.Success, fmt.Sprintf("revision %d, %d items", h.Revision, h.Items)
	}
}
