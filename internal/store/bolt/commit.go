package bolt

import (
	"errors"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/bolt/wal"
)

// maxGroup bounds the writes of one commit.
const maxGroup = 4096

// committer group-commits writes: one goroutine runs commits back to back,
// each taking every write that arrived while the previous one was being
// written to disk. While writes keep arriving, a commit first waits, at
// most delay, until as many writes are queued as the last one carried, so
// that many writes share the cost of syncing; a write to an idle store is
// committed at once.
//
// A commit applies its writes to a bbolt write transaction that stays open
// until the next flush, appends their changes to the write-ahead log and
// syncs it, and only then answers the writers and publishes the changes.
// A flush, every flushEvery or once the log outgrows maxWAL, commits the
// bbolt transaction (writing each page touched since the last flush once)
// and empties the log. Until then readers find the changes in the overlay.
type committer struct {
	db         *bbolt.DB
	log        *wal.Log
	over       *overlay
	now        func() time.Time
	publish    func([]store.Event)
	delay      time.Duration
	flushEvery time.Duration

	// Set and read by the loop only: the size of the last commit and
	// when it ended, and the open transaction and when it began.
	lastGroup int
	lastEnd   time.Time
	tx        *bbolt.Tx
	txStart   time.Time
	txDirty   bool      // tx holds changes
	released  time.Time // when a flush last released the file's pages

	mu      sync.Mutex
	queue   []*pending
	want    int           // while the loop waits for company: the queue length it waits for
	full    chan struct{} // the queue reached want
	wake    chan struct{} // a write is queued
	stop    chan struct{} // closed to stop the loop once the queue is empty
	stopped chan struct{} // closed when the loop returned
}

// maxWAL is the log size that forces a flush before flushEvery.
const maxWAL = 64 << 20

// pending is one queued write.
type pending struct {
	op     func(w *writeTx) error
	opErr  error         // what op returned
	events []store.Event // the changes op made
	dirty  bool          // op modified the transaction
	err    error         // the result handed back to the writer
	done   chan struct{}
}

// busyWindow is how soon after a commit of several writes the store still
// counts as busy, so that the next commit waits for company.
const busyWindow = 10 * time.Millisecond

func newCommitter(db *bbolt.DB, log *wal.Log, over *overlay, opts Options, publish func([]store.Event)) *committer {
	c := &committer{
		db: db, log: log, over: over, now: opts.Now, publish: publish, delay: opts.BatchDelay, flushEvery: opts.FlushInterval,
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

// close stops the loop once every queued write is committed and flushed,
// and closes the log.
func (c *committer) close() error {
	close(c.stop)
	<-c.stopped
	return c.log.Close()
}

func (c *committer) loop() {
	defer close(c.stopped)
	tick := time.NewTicker(c.flushEvery)
	defer tick.Stop()
	for {
		select {
		case <-c.wake:
			c.drain()
		case <-tick.C:
			if c.tx != nil && time.Since(c.txStart) >= c.flushEvery {
				c.flush()
			}
		case <-c.stop:
			c.drain()
			c.flush()
			return
		}
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
		if c.tx != nil && (c.lastEnd.Sub(c.txStart) >= c.flushEvery || c.log.Size() >= maxWAL) {
			c.flush()
		}
	}
}

// errRedo marks a write that failed after modifying the transaction, so
// that the others are applied again without it.
var errRedo = errors.New("bolt: redo the group without the failed write")

// commit applies group to the open transaction, logs its changes and
// answers its writers. A write that fails after a modification is taken
// out: the transaction is rolled back to the last flush plus the log, and
// the others are applied again.
func (c *committer) commit(group []*pending) {
	for len(group) > 0 {
		if err := c.begin(); err != nil {
			c.finish(group, err)
			return
		}
		failed := -1
		var err error
		now := c.now()
		for i, p := range group {
			if err = apply(c.tx, p, now); err != nil {
				if errors.Is(err, errRedo) {
					failed = i
				}
				break
			}
		}
		if failed >= 0 {
			c.rollback()
			c.finish([]*pending{group[failed]}, group[failed].opErr)
			group = append(group[:failed:failed], group[failed+1:]...)
			continue
		}
		events := collect(group)
		if err == nil && len(events) > 0 {
			err = c.log.Append(events)
		}
		if err != nil {
			c.rollback()
			c.finish(group, err)
			return
		}
		if len(events) > 0 {
			c.over.add(events)
			c.publish(events)
		}
		for _, p := range group {
			c.txDirty = c.txDirty || p.dirty
		}
		c.finish(group, nil)
		return
	}
}

// collect returns the changes of group, in revision order.
func collect(group []*pending) []store.Event {
	var events []store.Event
	for _, p := range group {
		events = append(events, p.events...)
	}
	return events
}

// begin opens the transaction that collects commits until the next flush,
// first replaying the log into it: the log is empty unless a flush failed
// or a transaction was rolled back.
func (c *committer) begin() error {
	if c.tx != nil {
		return nil
	}
	tx, err := c.db.Begin(true)
	if err != nil {
		return err
	}
	if err := replay(tx, c.log, c.now()); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	c.tx, c.txStart, c.txDirty = tx, time.Now(), c.log.Size() > 0
	return nil
}

// rollback drops the open transaction; the next one starts from the last
// flush and the log.
func (c *committer) rollback() {
	_ = c.tx.Rollback()
	c.tx = nil
}

// flush commits the open transaction to the bbolt file and empties the
// log and the overlay. If the commit fails they keep every change and the
// next transaction starts by replaying the log. A transaction without
// changes is dropped.
func (c *committer) flush() {
	if c.tx == nil {
		return
	}
	if !c.txDirty {
		c.rollback()
		return
	}
	tx := c.tx
	c.tx = nil
	if tx.Commit() != nil {
		return
	}
	c.over.clear()
	c.log.Reset()
	if t := time.Now(); t.Sub(c.released) >= releaseEvery {
		release(c.db)
		c.released = t
	}
}

// replay applies to tx the changes in the log that the bbolt file lacks,
// skipping those it holds: after a crash between a flush and the next
// commit, the log found is the one the flush reset (see package wal).
func replay(tx *bbolt.Tx, log *wal.Log, now time.Time) error {
	if log.Size() == 0 {
		return nil
	}
	w, err := newWriteTx(tx, now)
	if err != nil {
		return err
	}
	start := w.revision
	if err := log.Replay(w.replay); err != nil {
		return err
	}
	if w.revision == start {
		return nil
	}
	return w.meta.Put(revisionKey, encodeRevision(w.revision))
}

// apply runs p's operation in tx. It returns errRedo when the operation
// failed after modifying tx, and the error of a failed store access.
func apply(tx *bbolt.Tx, p *pending, now time.Time) error {
	p.opErr, p.events = nil, nil
	w, err := newWriteTx(tx, now)
	if err != nil {
		return err
	}
	p.opErr = p.op(w)
	p.dirty = w.dirty
	if p.opErr != nil {
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

// finish hands their results to the writers of group: err, or else what
// each write's operation returned.
func (c *committer) finish(group []*pending, err error) {
	for _, p := range group {
		p.err = err
		if err == nil {
			p.err = p.opErr
		}
		close(p.done)
	}
}
