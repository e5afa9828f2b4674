package store

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// ErrStopped is returned by Follower.WaitFor when the follower stopped
// before reaching the revision.
var ErrStopped = errors.New("store: follower stopped")

// Backoff between attempts to list a prefix again after the change feed
// broke: doubling from followBackoffMin up to followBackoffMax.
const (
	followBackoffMin = 50 * time.Millisecond
	followBackoffMax = 2 * time.Second
)

// Handler receives the contents of a prefix. Its methods are called from
// one goroutine at a time, never concurrently.
type Handler interface {
	// Reset replaces everything known under the prefix: on start and
	// after the change feed was lost.
	Reset(items []Item)
	// Apply applies one committed change.
	Apply(ev Event)
}

// ListedHandler is a Handler that also learns the revision each Reset
// reflects: Listed is called right after every Reset, before any later
// Apply.
type ListedHandler interface {
	Handler
	Listed(rev int64)
}

// handlers hands every listing and change to each of its handlers in
// turn.
type handlers []Handler

func (hs handlers) Reset(items []Item) {
	for _, h := range hs {
		h.Reset(items)
	}
}

func (hs handlers) Apply(ev Event) {
	for _, h := range hs {
		h.Apply(ev)
	}
}

func (hs handlers) Listed(rev int64) {
	for _, h := range hs {
		if l, ok := h.(ListedHandler); ok {
			l.Listed(rev)
		}
	}
}

// reset hands a listing at revision rev to h.
func reset(h Handler, items []Item, rev int64) {
	h.Reset(items)
	if l, ok := h.(ListedHandler); ok {
		l.Listed(rev)
	}
}

// Follower keeps a Handler current with the changes under a prefix.
type Follower struct {
	s       Store
	prefix  string
	h       Handler
	cancel  context.CancelFunc
	done    chan struct{}
	healthy atomic.Bool

	mu       sync.Mutex
	revision int64         // last revision applied
	advanced chan struct{} // closed when revision next moves, if anyone waits
}

// Follow lists prefix, hands the items to h.Reset and returns once that
// first load succeeded. It then applies every later change to h from a
// goroutine; when the change feed is lost or the store is unavailable it
// lists again (calling Reset) with capped exponential backoff. It stops
// when ctx is cancelled, Stop is called or the store is closed.
func Follow(ctx context.Context, s Store, prefix string, h Handler) (*Follower, error) {
	items, rev, err := s.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	reset(h, items, rev)
	ctx, cancel := context.WithCancel(ctx)
	f := &Follower{s: s, prefix: prefix, h: h, cancel: cancel, done: make(chan struct{}), revision: rev}
	f.healthy.Store(true)
	go f.run(ctx)
	return f, nil
}

// Revision returns the last revision applied: the handler reflects every
// change under the prefix up to it.
func (f *Follower) Revision() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.revision
}

// Healthy reports whether the follower is receiving changes; it is false
// while the change feed is broken and the prefix is being listed again,
// and after the follower stopped.
func (f *Follower) Healthy() bool { return f.healthy.Load() }

// WaitFor blocks until the follower applied a revision at or after rev, so
// that a write made under the prefix is visible through the handler. It
// returns ctx's error or ErrStopped if that does not happen first. The
// store's change feed carries only changes under the prefix, so rev must
// be the revision of such a change (or of a listing).
func (f *Follower) WaitFor(ctx context.Context, rev int64) error {
	for {
		f.mu.Lock()
		if f.revision >= rev {
			f.mu.Unlock()
			return nil
		}
		if f.advanced == nil {
			f.advanced = make(chan struct{})
		}
		advanced := f.advanced
		f.mu.Unlock()
		select {
		case <-advanced:
		case <-f.done:
			if f.Revision() >= rev {
				return nil
			}
			return ErrStopped
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Stop stops the follower and waits until the handler is no longer called.
func (f *Follower) Stop() {
	f.cancel()
	<-f.done
}

// Done is closed once the follower stopped.
func (f *Follower) Done() <-chan struct{} { return f.done }

func (f *Follower) run(ctx context.Context) {
	defer close(f.done)
	defer f.healthy.Store(false)
	defer f.cancel()
	delay := followBackoffMin
	err := f.follow(ctx, &delay)
	for !stopping(ctx, err) {
		f.healthy.Store(false)
		if !sleep(ctx, delay) {
			return
		}
		delay = min(2*delay, followBackoffMax)
		if err = f.load(ctx); err == nil {
			err = f.follow(ctx, &delay)
		}
	}
}

// follow watches from the next revision and applies changes until the
// watch ends. Once the watch is established the backoff starts over.
func (f *Follower) follow(ctx context.Context, delay *time.Duration) error {
	w, err := f.s.Watch(ctx, f.prefix, f.Revision()+1)
	if err != nil {
		return err
	}
	f.healthy.Store(true)
	*delay = followBackoffMin
	for ev := range w.Events() {
		f.h.Apply(ev)
		f.advance(ev.Item.Revision)
	}
	if err := w.Err(); err != nil {
		return err
	}
	return ErrWatchLost
}

// load lists the prefix again and resets the handler.
func (f *Follower) load(ctx context.Context) error {
	items, rev, err := f.s.List(ctx, f.prefix)
	if err != nil {
		return err
	}
	reset(f.h, items, rev)
	f.advance(rev)
	return nil
}

// advance records rev as applied and wakes waiters.
func (f *Follower) advance(rev int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revision = rev
	if f.advanced != nil {
		close(f.advanced)
		f.advanced = nil
	}
}

// stopping reports whether the follower must stop rather than retry.
func stopping(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, ErrClosed)
}

// sleep waits for d and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
