package httpapi

import (
	"fmt"
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
// store in the store-neutral backup format (package backup), streamed.
// The snapshot is taken before the answer starts, so a store error is an
// error answer; an error after that cuts the stream, which the file's
// missing end makes unusable.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	c := s.caller(r)
	rec := audit.Record{Actor: c.Account, IP: c.IP, Action: "store.backup", Outcome: audit.Failure}
	defer func() { s.Audit.Record(rec) }()
	h, items, err := backup.Snapshot(r.Context(), s.Store, s.storeBackend, s.version)
	if err != nil {
		s.errs.Write(w, r, apierror.FromStore(err))
		return
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(backupWriteTime))
	w.Header().Set("Content-Type", backup.ContentType)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="gatehouse-%d.backup"`, h.Revision))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set(RevisionHeader, strconv.FormatInt(h.Revision, 10))
	if err := backup.Write(w, h, items); err != nil {
		rec.Detail = fmt.Sprintf("revision %d, cut off: %v", h.Revision, err)
		return
	}
	rec.Outcome, rec.Detail = audit.Success, fmt.Sprintf("revision %d, %d items", h.Revision, len(items))
}
