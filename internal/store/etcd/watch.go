package etcd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gatehouse/gatehouse/internal/store"
)

const (
	// watchBuffer is how many events a watcher holds before its consumer
	// reads them; beyond that the watcher waits for the consumer.
	watchBuffer = 256
	// livenessInterval is how often the cluster is pinged while watches
	// run. The etcd client silently resumes a watch whose connection
	// broke, so without this a watch on an unreachable cluster would stall
	// without ending.
	livenessInterval = time.Second
)

// Watch delivers every change under prefix from fromRevision on. It
// returns once etcd has created the watch, or store.ErrUnavailable if that
// takes longer than the request timeout. A revision etcd has compacted
// away ends the watcher with store.ErrCompacted. The watch requires the
// member serving it to have a leader, so a partitioned member ends it with
// store.ErrWatchLost instead of stalling; so does a cluster that stops
// answering pings.
func (s *Store) Watch(ctx context.Context, prefix string, fromRevision int64) (store.Watcher, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	wctx, cancel := context.WithCancelCause(ctx)
	w := &watcher{s: s, parent: ctx, ctx: wctx, cancel: cancel, events: make(chan store.Event, watchBuffer)}
	timer := time.AfterFunc(s.timeout, func() { cancel(context.DeadlineExceeded) })
	ch := s.client.Watch(clientv3.WithRequireLeader(wctx), s.key(prefix),
		clientv3.WithPrefix(), clientv3.WithRev(max(fromRevision, 1)))
	if !timer.Stop() || wctx.Err() != nil {
		cancel(nil)
		return nil, s.mapError(ctx, context.Cause(wctx))
	}
	if !s.watches.add(w) {
		cancel(store.ErrClosed)
		return nil, store.ErrClosed
	}
	go w.run(ch)
	return w, nil
}

// watcher is one change feed. Its context is cancelled, with the reason as
// cause, when the watch must end: by the caller, by Close
// (store.ErrClosed) or by the liveness check (store.ErrWatchLost).
type watcher struct {
	s      *Store
	parent context.Context
	ctx    context.Context
	cancel context.CancelCauseFunc
	events chan store.Event

	mu  sync.Mutex
	err error
}

var _ store.Watcher = (*watcher)(nil)

// Events delivers changes in revision order; it is closed when the watch ends.
func (w *watcher) Events() <-chan store.Event { return w.events }

// Err returns nil while the watch runs, then why it ended.
func (w *watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// run forwards the etcd watch until it ends, then ends the watcher.
func (w *watcher) run(ch clientv3.WatchChan) {
	stop := context.AfterFunc(w.s.life, func() { w.cancel(store.ErrClosed) })
	defer w.s.watches.remove(w)
	err := w.forward(ch)
	stop()
	w.cancel(err)
	if errors.Is(err, store.ErrWatchLost) || errors.Is(err, store.ErrCompacted) {
		w.s.log.Info("etcd watch ended", "err", err)
	}
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
	close(w.events)
}

// forward delivers the events of ch in order and returns why it stopped.
func (w *watcher) forward(ch clientv3.WatchChan) error {
	for {
		select {
		case resp, ok := <-ch:
			if !ok || resp.Err() != nil {
				return w.ended(resp.Err())
			}
			for _, ev := range resp.Events {
				e, err := w.s.event(ev)
				if err != nil {
					return fmt.Errorf("%w: %v", store.ErrWatchLost, err)
				}
				select {
				case w.events <- e:
				case <-w.ctx.Done():
					return w.reason()
				}
			}
		case <-w.ctx.Done():
			return w.reason()
		}
	}
}

// ended says why the etcd watch channel closed or failed with err.
func (w *watcher) ended(err error) error {
	switch {
	case w.ctx.Err() != nil:
		return w.reason()
	case w.s.closed.Load():
		return store.ErrClosed
	case errors.Is(err, rpctypes.ErrCompacted):
		return store.ErrCompacted
	case err == nil:
		return store.ErrWatchLost
	}
	return fmt.Errorf("%w: %v", store.ErrWatchLost, err)
}

// reason says why the watcher's context was cancelled: the caller's
// context error, or the cause given by Close or the liveness check.
func (w *watcher) reason() error {
	if err := w.parent.Err(); err != nil {
		return err
	}
	return context.Cause(w.ctx)
}

// event converts an etcd event under the prefix.
func (s *Store) event(ev *clientv3.Event) (store.Event, error) {
	if ev.Type == mvccpb.DELETE {
		key := strings.TrimPrefix(string(ev.Kv.Key), s.prefix)
		return store.Event{Type: store.EventDelete, Item: store.Item{Key: key, Revision: ev.Kv.ModRevision}}, nil
	}
	it, err := s.decode(ev.Kv)
	if err != nil {
		return store.Event{}, err
	}
	return store.Event{Type: store.EventPut, Item: *it}, nil
}

// watches tracks the running watchers of a store and checks, while any
// runs, that the cluster still answers.
type watches struct {
	s  *Store
	wg sync.WaitGroup

	mu     sync.Mutex
	active map[*watcher]struct{}
	closed bool
}

func newWatches(s *Store) *watches {
	ws := &watches{s: s, active: make(map[*watcher]struct{})}
	ws.wg.Go(ws.monitor)
	return ws
}

// add registers a starting watcher; false once the store is closing.
func (ws *watches) add(w *watcher) bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.closed {
		return false
	}
	ws.active[w] = struct{}{}
	ws.wg.Add(1)
	return true
}

// remove deregisters a watcher whose goroutine is returning.
func (ws *watches) remove(w *watcher) {
	ws.mu.Lock()
	delete(ws.active, w)
	ws.mu.Unlock()
	ws.wg.Done()
}

// close refuses new watchers and waits until every watcher and the
// liveness check stopped; the store's life context is already cancelled.
func (ws *watches) close() {
	ws.mu.Lock()
	ws.closed = true
	ws.mu.Unlock()
	ws.wg.Wait()
}

// monitor pings the cluster every livenessInterval while watchers run and
// ends them with store.ErrWatchLost when it is unavailable.
func (ws *watches) monitor() {
	t := time.NewTicker(livenessInterval)
	defer t.Stop()
	for {
		select {
		case <-ws.s.life.Done():
			return
		case <-t.C:
		}
		if len(ws.running()) == 0 {
			continue
		}
		err := ws.s.Ping(ws.s.life)
		if !errors.Is(err, store.ErrUnavailable) {
			continue
		}
		ws.s.log.Warn("etcd unreachable, ending watches", "err", err)
		for _, w := range ws.running() {
			w.cancel(fmt.Errorf("%w: %v", store.ErrWatchLost, err))
		}
	}
}

// running returns the registered watchers.
func (ws *watches) running() []*watcher {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	running := make([]*watcher, 0, len(ws.active))
	for w := range ws.active {
		running = append(running, w)
	}
	return running
}
