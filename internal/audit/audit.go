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
// Each store item holds the records queued at the time it is written (a
// JSON array), so a burst of events costs a few writes, not one per event.
type Log struct {
	st        store.Store
	logger    *slog.Logger
	retention time.Duration
	queue     chan Record
	wg        sync.WaitGroup
	mu        sync.RWMutex // guards closed against sends on a closed queue
	closed    bool
}

const (
	// writers is how many store writes may be in flight at once. One is
	// enough: it takes every record queued while its last write was being
	// committed, so more writers would only split the same records into
	// more, smaller items, each one more write in the store's commits.
	writers = 1
	// maxBatch bounds the records of one store item.
	maxBatch = 512
)

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

// writer stores what is queued, each time every record waiting (up to
// maxBatch) in one item.
func (l *Log) writer() {
	defer l.wg.Done()
	batch := make([]Record, 0, maxBatch)
	for r := range l.queue {
		batch = append(batch[:0], r)
	drain:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-l.queue:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		l.write(batch)
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
		l.logger.Warn("audit records not stored", "records", len(batch), "err", err)
	}
}

// bucketShift groups item keys into time buckets for List: keys start
// with 16 hex digits of a UnixNano time, and a bucket is what shares the
// first 6 of them (2^40 ns, about 18 minutes).
const bucketShift = 40

// List returns the newest records, newest first, at most limit of them
// (all when limit <= 0). It reads time buckets from the newest back and
// stops once it has limit records at least as new as the bucket it has
// just read: an item is keyed by its newest record, so every item not yet
// read holds only older records. Its cost follows limit, not retention.
func (l *Log) List(ctx context.Context, limit int) ([]Record, error) {
	if limit <= 0 {
		limit = math.MaxInt
	}
	now := time.Now()
	newest := uint64(now.Add(time.Hour).UnixNano()) >> bucketShift // an hour of clock skew between replicas
	oldest := uint64(now.Add(-l.retention-time.Hour).UnixNano()) >> bucketShift
	out := []Record{}
	var older []int64 // times of the records read but older than the last bucket read
	for b, settled := newest, 0; b >= oldest && settled < limit; b-- {
		items, _, err := l.st.List(ctx, fmt.Sprintf("%s%06x", prefix, b))
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			var batch []Record
			if json.Unmarshal(it.Value, &batch) == nil {
				out = append(out, batch...)
				for _, r := range batch {
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
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	if len(out) > limit {
		out = out[:limit]
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
