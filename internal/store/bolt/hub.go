package bolt

import (
	"context"
	"strings"
	"sync"

	"github.com/gatehouse/gatehouse/internal/store"
)

// hub fans committed events out to watchers in revision order and keeps a
// ring of recent events for watches that start in the past. The committer
// publishes every commit's events in revision order.
type hub struct {
	mu       sync.Mutex
	next     int64         // revision of the next event to deliver
	oldest   int64         // first revision the history ever held
	history  []store.Event // revision r at index r % len(history)
	buffer   int
	watchers map[*watcher]struct{}
	closed   bool
}

func newHub(revision int64, history, buffer int) *hub {
	return &hub{
		next:     revision + 1,
		oldest:   revision + 1,
		history:  make([]store.Event, history),
		buffer:   buffer,
		watchers: make(map[*watcher]struct{}),
	}
}

// publish hands over the events of one commit, in revision order.
func (h *hub) publish(events []store.Event) {
	if len(events) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	for _, ev := range events {
		h.history[h.slot(ev.Item.Revision)] = ev
		h.next = ev.Item.Revision + 1
		h.deliver(ev)
	}
}

func (h *hub) slot(rev int64) int64 {
	return rev % int64(len(h.history))
}

// deliver sends ev to every interested watcher, ending those whose buffer
// is full.
func (h *hub) deliver(ev store.Event) {
	for w := range h.watchers {
		if !w.wants(ev) {
			continue
		}
		select {
		case w.events <- ev:
		default:
			h.finish(w, store.ErrWatchLost)
		}
	}
}

// watch starts a watcher, replaying the retained events from from on.
func (h *hub) watch(ctx context.Context, prefix string, from int64) (*watcher, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, store.ErrClosed
	}
	from = max(from, 1)
	if from < max(h.oldest, h.next-int64(len(h.history))) {
		return nil, store.ErrCompacted
	}
	w := &watcher{prefix: prefix, from: from}
	var replay []store.Event
	for rev := from; rev < h.next; rev++ {
		if ev := h.history[h.slot(rev)]; w.wants(ev) {
			replay = append(replay, ev)
		}
	}
	w.events = make(chan store.Event, len(replay)+h.buffer)
	for _, ev := range replay {
		w.events <- ev
	}
	h.watchers[w] = struct{}{}
	w.stop = context.AfterFunc(ctx, func() { h.end(w, ctx.Err()) })
	return w, nil
}

// end ends a watcher with err unless it already ended.
func (h *hub) end(w *watcher, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.finish(w, err)
}

// finish ends a watcher with err unless it already ended; h.mu is held.
func (h *hub) finish(w *watcher, err error) {
	if _, ok := h.watchers[w]; !ok {
		return
	}
	delete(h.watchers, w)
	w.stop()
	w.setErr(err)
	close(w.events)
}

// close ends every watcher with store.ErrClosed and refuses new ones.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for w := range h.watchers {
		h.finish(w, store.ErrClosed)
	}
}

// watcher is one change feed of a hub.
type watcher struct {
	prefix string
	from   int64
	events chan store.Event
	stop   func() bool // deregisters the context callback

	mu  sync.Mutex
	err error
}

var _ store.Watcher = (*watcher)(nil)

func (w *watcher) wants(ev store.Event) bool {
	return ev.Item.Revision >= w.from && strings.HasPrefix(ev.Item.Key, w.prefix)
}

// Events delivers changes in revision order; it is closed when the watch ends.
func (w *watcher) Events() <-chan store.Event { return w.events }

// Err returns nil while the watch runs, then why it ended.
func (w *watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *watcher) setErr(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.err = err
}
