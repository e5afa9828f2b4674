package ccmessaging

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// flushWriters is how many last-activity writes may be in flight at once;
// concurrent writes share commits in the store backends.
const flushWriters = 8

// flushLoop writes last-activity times every FlushInterval until ctx ends.
func (s *Service) flushLoop(ctx context.Context) {
	defer close(s.flushed)
	t := time.NewTicker(s.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.flush(ctx)
		}
	}
}

// flush writes the last-activity time of every session that served a
// request on this replica since its time was last written: one write per
// active session per interval, however many requests it made. It visits
// only the sessions queued by their requests since the last flush.
func (s *Service) flush(ctx context.Context) {
	var wg sync.WaitGroup
	slots := make(chan struct{}, flushWriters)
	for _, sess := range s.sessions.takeDirty() {
		sess.queued.Store(0) // before reading last: a request from now on queues it again
		last := sess.last.Load()
		if last <= sess.flushed.Load() || last <= sess.record().LastActivity {
			continue
		}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			s.writeActivity(ctx, sess, last)
		}()
	}
	wg.Wait()
}

// writeActivity stores last as the session's last activity, unless the
// session was replaced or ended, or already records a later time.
func (s *Service) writeActivity(ctx context.Context, sess *session, last int64) {
	known := sess.record()
	_, err := s.st.Update(ctx, sessionKey(known.Channel, known.User), func(cur *store.Item) (*store.Item, error) {
		if cur == nil {
			return nil, errNoWrite
		}
		rec, ok := decodeSession(string(cur.Value))
		if !ok {
			return nil, errBadRecord
		}
		if rec.ID != known.ID || rec.LastActivity >= last {
			return nil, errNoWrite
		}
		rec.LastActivity = last
		return &store.Item{Value: encodeSession(&rec), Expires: s.storeExpiry(&rec)}, nil
	})
	if err != nil && !errors.Is(err, errNoWrite) {
		if ctx.Err() == nil {
			s.logger.Warn("session activity not stored", "channel", known.Channel, "err", err)
		}
		s.sessions.queue(sess) // tried again at the next flush
		return
	}
	if last > sess.flushed.Load() {
		sess.flushed.Store(last)
	}
}
