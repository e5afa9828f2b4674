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
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/store"
)

const prefix = "audit/"

var (
	unstoredStore = metrics.AuditUnstored.WithLabelValues("store_error")
	unstoredQueue = metrics.AuditUnstored.WithLabelValues("queue_full")
)

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

// Log writes audit records. Record returns once its record is durable in
// the store, so the record of an action that was answered survives a
// crash of the process. A single writer stores the records in batches:
// each batch holds every record that arrived while the previous one was
// being written (a JSON array in one store item), so concurrent callers
// share one store write and a burst of events costs a few writes, not
// one per event.
type Log struct {
	st        store.Store
	logger    *slog.Logger
	retention time.Duration
	wake      chan struct{} // holds a signal while records wait or once closed
	stopped   chan struct{} // closed when the writer has returned

	mu      sync.Mutex
	pending *batch // records waiting for the writer; nil when none
	closed  bool
}

// batch is the records one turn of the writer stores; done is closed once
// they are stored (or their write failed).
type batch struct {
	recs []Record
	done chan struct{}
}

const (
	// maxBatch bounds the records of one store item.
	maxBatch = 512
	// maxQueued bounds the records waiting for the writer beyond which
	// RecordAsync keeps a record in the log only. Record always waits.
	maxQueued = 4096
)

// New starts an audit log writing to st (nil: log lines only) and logger,
// keeping records for retention.
func New(st store.Store, logger *slog.Logger, retention time.Duration) *Log {
	l := &Log{st: st, logger: logger, retention: retention,
		wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	if st != nil {
		go l.writer()
	}
	return l
}

// Record audits one event and returns once its record is stored, so that
// a request answered after Record has its audit record durable. Time is
// set when zero. If the store write fails the record stays in the log
// only: the failure is logged and counted in
// gatehouse_audit_records_unstored_total, and Record returns all the
// same, since the action audited has already happened.
func (l *Log) Record(r Record) {
	if b := l.add(r, false); b != nil {
		<-b.done
	}
}

// RecordAsync audits one event like Record but returns without waiting
// for the store, for routine token issuance on a hot path (the in-band
// renewal of a session token, a successful AK/SK exchange): its log line
// is written before it returns. When maxQueued records are already
// waiting the record is kept in the log only.
func (l *Log) RecordAsync(r Record) { l.add(r, true) }

// add writes r's log line and queues r for the store, returning the batch
// it joined (nil when r will not be stored).
func (l *Log) add(r Record, async bool) *batch {
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
		return nil
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	if async && l.pending != nil && len(l.pending.recs) >= maxQueued {
		l.mu.Unlock()
		unstoredQueue.Inc()
		l.logger.Warn("audit queue full; record kept in the log only", "action", r.Action)
		return nil
	}
	if l.pending == nil {
		l.pending = &batch{done: make(chan struct{})}
	}
	b := l.pending
	b.recs = append(b.recs, r)
	l.mu.Unlock()
	l.signal()
	return b
}

// signal wakes the writer unless a signal is already waiting for it.
func (l *Log) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// writer stores, each time it is woken, every record waiting (in items of
// at most maxBatch records) and releases their callers, until the log is
// closed and nothing waits.
func (l *Log) writer() {
	defer close(l.stopped)
	for range l.wake {
		l.mu.Lock()
		b, closed := l.pending, l.closed
		l.pending = nil
		l.mu.Unlock()
		if b != nil {
			for recs := b.recs; len(recs) > 0; {
				n := min(len(recs), maxBatch)
				l.write(recs[:n])
				recs = recs[n:]
			}
			close(b.done)
		}
		if closed {
			return
		}
	}
}

// write stores batch in one item, under a key that orders it by its
// newest record's time (List relies on no record being newer than its
// item's key) and kept until that record's retention has passed.
func (l *Log) write(batch []Record) {
	last := batch[0].Time
	for _, r := range batch[1:] {
		if r.Time.After(last) {
			last = r.Time
		}
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	key := fmt.Sprintf("%s%016x-%s", prefix, last.UnixNano(), hex.EncodeToString(rnd[:]))
	val, _ := json.Marshal(batch)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := l.st.Put(ctx, store.Item{Key: key, Value: val, Expires: last.Add(l.retention)}); err != nil {
		unstoredStore.Add(float64(len(batch)))
		l.logger.Error("audit records not stored; they are in the log only", "records", len(batch), "err", err)
	}
}

// bucketShift groups item keys into time buckets for List: keys start
// with 16 hex digits of a UnixNano time, and a bucket is what shares the
// first 6 of them (2^40 ns, about 18 minutes).
const bucketShift = 40

// List returns the newest records, newest first, at most limit of them
// (all when limit <= 0): Query without a filter.
func (l *Log) List(ctx context.Context, limit int) ([]Record, error) {
	return l.Query(ctx, Filter{}, limit)
}

// Filter selects records; a zero field selects any.
type Filter struct {
	// From and To bound the time: From inclusive, To exclusive.
	From, To time.Time
	// Actor is the whole actor.
	Actor string
	// Action is a prefix of the action ("account." selects every
	// account change).
	Action string
	// Outcome is Success or Failure.
	Outcome string
}

// Match reports whether f selects r.
func (f Filter) Match(r Record) bool {
	return (f.From.IsZero() || !r.Time.Before(f.From)) && (f.To.IsZero() || r.Time.Before(f.To)) &&
		(f.Actor == "" || r.Actor == f.Actor) && strings.HasPrefix(r.Action, f.Action) &&
		(f.Outcome == "" || r.Outcome == f.Outcome)
}

// Query returns the newest records f selects, newest first, at most
// limit of them (all when limit <= 0), searching every record kept. It
// reads time buckets from the newest back and stops once it has limit
// matches at least as new as the bucket it has just read: an item is
// keyed by its newest record, so every item not yet read holds only
// older records. It also stops at the bucket before f.From, which holds
// only older records. It holds at most limit matches and one bucket's
// items at a time; its cost follows the records it reads, which is all
// of them within f's time range when fewer than limit match.
func (l *Log) Query(ctx context.Context, f Filter, limit int) ([]Record, error) {
	if limit <= 0 {
		limit = math.MaxInt
	}
	now := time.Now()
	newest := uint64(now.Add(time.Hour).UnixNano()) >> bucketShift // an hour of clock skew between replicas
	oldest := uint64(now.Add(-l.retention-time.Hour).UnixNano()) >> bucketShift
	if !f.From.IsZero() {
		oldest = max(oldest, uint64(max(f.From.UnixNano(), 0))>>bucketShift)
	}
	out := []Record{}
	var older []int64 // times of the matches read but older than the last bucket read
	for b, settled := newest, 0; b >= oldest && settled < limit; b-- {
		items, _, err := l.st.List(ctx, fmt.Sprintf("%s%06x", prefix, b))
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			var batch []Record
			if json.Unmarshal(it.Value, &batch) != nil {
				continue
			}
			for _, r := range batch {
				if f.Match(r) {
					out = append(out, r)
					older = append(older, r.Time.UnixNano())
				}
			}
		}
		start := int64(b << bucketShift)
		kept := older[:0]
		for _, t := range older {
			if t >= start {
				settled++
			} else {
				kept = append(kept, t)
			}
		}
		older = kept
		if len(out) > limit {
			out = newestFirst(out, limit)
		}
	}
	return newestFirst(out, limit), nil
}

// newestFirst sorts recs newest first and keeps the first limit: a
// record with limit newer ones is in no answer.
func newestFirst(recs []Record, limit int) []Record {
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].Time.After(recs[j].Time) })
	if len(recs) > limit {
		clear(recs[limit:])
		recs = recs[:limit]
	}
	return recs
}

// Close stores every waiting record and stops the writer. Records made
// after Close go to the log only.
func (l *Log) Close() {
	l.mu.Lock()
	if l.closed || l.st == nil {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	l.signal()
	<-l.stopped
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
