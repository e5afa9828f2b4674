package bolt

import (
	"errors"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/gatehouse/gatehouse/internal/store"
)

// maxGroup bounds the writes of one commit.
const maxGroup = 4096

// committer group-commits writes: one goroutine runs commits back to back,
// each taking every write that arrived while the previous one was being
// written to disk. While writes keep arriving, a commit first waits, at
// most delay, until as many writes are queued as the last one carried, so
// that many writes share the cost of writing pages and syncing the file;
// a write to an idle store is committed at once.
type committer struct {
	db      *bbolt.DB
	now     func() time.Time
	publish func([]store.Event)
	delay   time.Duration

	// Set and read by the loop only: the size of the last commit and
	// when it ended.
	lastGroup int
	lastEnd   time.Time

	mu      sync.Mutex
	queue   []*pending
	want    int           // while the loop waits for company: the queue length it waits for
	full    chan struct{} // the queue reached want
	wake    chan struct{} // a write is queued
	stop    chan struct{} // closed to stop the loop once the queue is empty
	stopped chan struct{} // closed when the loop returned
}

// pending is one queued write.
type pending struct {
	op     func(w *writeTx) error
	opErr  error         // what op returned
	events []store.Event // the changes op made
	err    error         // the result handed back to the writer
	done   chan struct{}
}

// busyWindow is how soon after a commit of several writes the store still
// counts as busy, so that the next commit waits for company.
const busyWindow = 10 * time.Millisecond

func newCommitter(db *bbolt.DB, now func() time.Time, publish func([]store.Event), delay time.Duration) *committer {
	c := &committer{
		db: db, now: now, publish: publish, delay: delay,
		wake: make(chan struct{}, 1), full: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{}),
	}
	go c.loop()
	return c
}

// write queues op and returns once it was committed, with op's error or
// the commit's. op runs in a transaction shared with other writes: an
// error it returns before modifying anything fails it alone, and an error
// after a modification rolls back its changes only.
func (c *committer) write(op func(w *writeTx) error) error {
	p := &pending{op: op, done: make(chan struct{})}
	c.mu.Lock()
	c.queue = append(c.queue, p)
	full := c.want > 0 && len(c.queue) >= c.want
	c.mu.Unlock()
	signal(c.wake)
	if full {
		signal(c.full)
	}
	<-p.done
	return p.err
}

// close stops the loop once every queued write is committed.
func (c *committer) close() {
	close(c.stop)
	<-c.stopped
}

func (c *committer) loop() {
	defer close(c.stopped)
	for {
		select {
		case <-c.wake:
		case <-c.stop:
			c.drain()
			return
		}
		c.drain()
	}
}

// gather waits, while the store is busy, until as many writes are queued
// as the last commit carried, or delay passed.
func (c *committer) gather() {
	if c.lastGroup < 2 || time.Since(c.lastEnd) >= busyWindow {
		return
	}
	c.mu.Lock()
	if len(c.queue) >= c.lastGroup {
		c.mu.Unlock()
		return
	}
	c.want = c.lastGroup
	c.mu.Unlock()
	t := time.NewTimer(c.delay)
	select {
	case <-c.full:
	case <-t.C:
	}
	t.Stop()
	c.mu.Lock()
	c.want = 0
	c.mu.Unlock()
	select {
	case <-c.full: // a signal sent after the wait ended
	default:
	}
}

// signal wakes the receiver of ch unless it is awake already.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// drain commits until the queue is empty.
func (c *committer) drain() {
	for {
		c.gather()
		c.mu.Lock()
		n := min(len(c.queue), maxGroup)
		group := c.queue[:n:n]
		c.queue = c.queue[n:]
		c.mu.Unlock()
		if n == 0 {
			return
		}
		c.commit(group)
		c.lastGroup, c.lastEnd = n, time.Now()
	}
}

// errRedo rolls back a transaction in which a write failed after
// modifying it, so that the others can be committed without it.
var errRedo = errors.New("bolt: redo the group without the failed write")

// commit writes group in one transaction. A write that fails after a
// modification is taken out and committed alone, which rolls back its
// changes, and the others are committed again.
func (c *committer) commit(group []*pending) {
	for len(group) > 0 {
		failed := -1
		err := c.db.Update(func(tx *bbolt.Tx) error {
			now := c.now()
			for i, p := range group {
				if err := apply(tx, p, now); err != nil {
					if errors.Is(err, errRedo) {
						failed = i
					}
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			c.finish(group, err)
			return
		}
		c.finish([]*pending{group[failed]}, group[failed].opErr)
		group = append(group[:failed:failed], group[failed+1:]...)
	}
}

// apply runs p's operation in tx. It returns errRedo when the operation
// failed after modifying tx, and the error of a failed store access.
func apply(tx *bbolt.Tx, p *pending, now time.Time) error {
	p.opErr, p.events = nil, nil
	w, err := newWriteTx(tx, now)
	if err != nil {
		return err
	}
	if p.opErr = p.op(w); p.opErr != nil {
		if w.dirty {
			return errRedo
		}
		return nil
	}
	if len(w.events) == 0 {
		return nil
	}
	p.events = w.events
	return w.meta.Put(revisionKey, encodeRevision(w.revision))
}

// finish hands their results to the writers of a group whose commit
// returned err, after publishing the changes it committed.
func (c *committer) finish(group []*pending, err error) {
	if err == nil {
		var events []store.Event
		for _, p := range group {
			events = append(events, p.events...)
		}
		c.publish(events)
	}
	for _, p := range group {
		p.err = err
		if err == nil {
			p.err = p.opErr
		}
		close(p.done)
	}
}
