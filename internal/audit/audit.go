// Package audit records security events: every login, lockout, revocation
// and administrative change becomes a structured log line and a record in
// the store, kept for a retention period and readable by administrators.
// Records never carry a password, secret or token.
package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/store"
)

const prefix = "audit/"

// Outcomes of an audited action.
const (
	Success = "success"
	Failure = "failure"
)

// Record is one audited event.
type Record struct {
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor,omitempty"`
	IP      string    `json:"ip,omitempty"`
	Action  string    `json:"action"`
	Target  string    `json:"target,omitempty"`
	Outcome string    `json:"outcome"`
	Detail  string    `json:"detail,omitempty"`
}

// Log writes audit records. Store writes happen in the background so an
// audited request does not wait for them; Close flushes what is queued.
type Log struct {
	st        store.Store
	logger    *slog.Logger
	retention time.Duration
	queue     chan Record
	wg        sync.WaitGroup
	mu        sync.RWMutex // guards closed against sends on a closed queue
	closed    bool
}

// writers is how many store writes may be in flight at once; concurrent
// writes are group-committed by the backends.
const writers = 16

// New starts an audit log writing to st (nil: log lines only) and logger,
// keeping records for retention.
func New(st store.Store, logger *slog.Logger, retention time.Duration) *Log {
	l := &Log{st: st, logger: logger, retention: retention, queue: make(chan Record, 4096)}
	if st != nil {
		for range writers {
			l.wg.Add(1)
			go l.writer()
		}
	}
	return l
}

// Record audits one event. Time is set when zero.
func (l *Log) Record(r Record) {
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	l.logger.LogAttrs(context.Background(), slog.LevelInfo, "audit",
		slog.String("action", r.Action),
		slog.String("actor", r.Actor),
		slog.String("ip", r.IP),
		slog.String("target", r.Target),
		slog.String("outcome", r.Outcome),
		slog.String("detail", r.Detail),
	)
	if l.st == nil {
		return
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return
	}
	select {
	case l.queue <- r:
	default:
		l.logger.Warn("audit queue full; record kept in the log only", "action", r.Action)
	}
}

func (l *Log) writer() {
	defer l.wg.Done()
	for r := range l.queue {
		l.write(r)
	}
}

func (l *Log) write(r Record) {
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	key := fmt.Sprintf("%s%016x-%s", prefix, r.Time.UnixNano(), hex.EncodeToString(rnd[:]))
	val, _ := json.Marshal(r)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := l.st.Put(ctx, store.Item{Key: key, Value: val, Expires: r.Time.Add(l.retention)}); err != nil {
		l.logger.Warn("audit record not stored", "action", r.Action, "err", err)
	}
}

// List returns the newest records, newest first, at most limit of them.
func (l *Log) List(ctx context.Context, limit int) ([]Record, error) {
	items, _, err := l.st.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	sort.Slice(items, func(i, j int) bool { return items[i].Key > items[j].Key })
	if limit > 0 && len(items) > limit {
		items = items[:limit]
	}
	out := make([]Record, 0, len(items))
	for _, it := range items {
		var r Record
		if json.Unmarshal(it.Value, &r) == nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// Close stores every queued record and stops the writers.
func (l *Log) Close() {
	l.mu.Lock()
	if l.closed || l.st == nil {
		l.mu.Unlock()
		return
	}
	l.closed = true
	close(l.queue)
	l.mu.Unlock()
	l.wg.Wait()
}

// Change audits an administrative change by actor from ip and its outcome:
// a failure records the API error's code and message, never its input.
func (l *Log) Change(actor, ip, action, target string, err error) {
	r := Record{Actor: actor, IP: ip, Action: action, Target: target, Outcome: Success}
	if err != nil {
		r.Outcome, r.Detail = Failure, "internal error"
		if ae, ok := apierror.As(err); ok {
			r.Detail = ae.Code + " " + ae.Message
		}
	}
	l.Record(r)
}
