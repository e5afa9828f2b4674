// Package bolt is Gatehouse's embedded store backend: a bbolt file holding
// every item with its revision and expiry, a store-wide revision counter
// and an expiry index swept in the background; a write-ahead log beside it
// (package wal); and an in-memory change feed with a short history.
//
// Concurrent writes are group-committed (commit.go): each commit carries
// every write that arrived while the previous one was being synced (and,
// under load, during a short wait), applies them to a bbolt write
// transaction that stays open, and appends their changes to the log as
// one record, synced before its writers are answered: a write is on disk
// before it returns. Reads find the changes not yet in the bbolt file in
// an in-memory overlay. Every flush interval, or once the log outgrows
// 64 MiB, the transaction is committed to the bbolt file and the log is
// reset. Opening the store replays into the bbolt file the changes of the
// log it lacks.
package bolt

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/bolt/wal"
)

// Options tune a Store. The zero value selects every default.
type Options struct {
	// SweepInterval is how often expired items are deleted (default 1s).
	// Expired items are invisible to reads before they are swept.
	SweepInterval time.Duration
	// WatchBuffer is how many events a watcher may fall behind before it
	// is ended with store.ErrWatchLost (default 1024).
	WatchBuffer int
	// History is how many recent events are kept in memory so a watch can
	// start in the past; older revisions give store.ErrCompacted
	// (default 4096).
	History int
	// LockTimeout is how long Open waits for the file lock held by another
	// process before failing (default 2s).
	LockTimeout time.Duration
	// BatchDelay is how long a commit waits at most for more writes to
	// join it while writes arrive concurrently (default 500µs): larger
	// commits cost less per write. A write to an idle store is committed
	// at once.
	BatchDelay time.Duration
	// FlushInterval is how often the changes in the write-ahead log are
	// committed to the bbolt file (default 100ms). A longer interval
	// writes each page touched by many writes once, but holds more changes
	// in memory and makes each flush longer.
	FlushInterval time.Duration
	// Now is the clock used for expiry (default time.Now).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.SweepInterval <= 0 {
		o.SweepInterval = time.Second
	}
	if o.WatchBuffer <= 0 {
		o.WatchBuffer = 1024
	}
	if o.History <= 0 {
		o.History = 4096
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = 2 * time.Second
	}
	if o.BatchDelay <= 0 {
		o.BatchDelay = 500 * time.Microsecond
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 100 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// mapSize is the size of the address range the file is mapped into, as
// etcd maps its own: a file that outgrows its map is mapped again, which
// waits for every read transaction to end, and a Scan (a backup) holds one
// for as long as its reader takes. Until the file outgrows mapSize, a
// flush that grows the file does not wait for a backup, and the writes
// queued behind it do not either. The range is address space only: the
// process's memory holds the pages read, not the range (of which 32-bit
// platforms take less).
const mapSize = min(10<<30, math.MaxInt/4)

var (
	itemsBucket  = []byte("items")
	expiryBucket = []byte("expiry")
	metaBucket   = []byte("meta")
	revisionKey  = []byte("revision")
)

// Store is a store.Store kept in one bbolt file.
type Store struct {
	db      *bbolt.DB
	now     func() time.Time
	hub     *hub
	over    *overlay
	commits *committer

	mu     sync.RWMutex // shared by every operation, exclusive while closing
	closed bool

	closeOnce sync.Once
	closeErr  error
	stop      chan struct{} // closed to stop the sweeper
	swept     chan struct{} // closed when the sweeper returned
}

var _ store.Store = (*Store)(nil)

// Open opens or creates the store file at path (mode 0600) and its
// write-ahead log, path + ".wal", replaying into the file what the log
// holds. It fails if another process holds the file for longer than
// opts.LockTimeout.
func Open(path string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	// The list of free pages is kept in a hash map and not written by
	// every commit but rebuilt when the file is opened, as etcd does: on a
	// large file it would otherwise add pages to every commit.
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: opts.LockTimeout, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType,
		InitialMmapSize: mapSize,
	})
	if errors.Is(err, bberrors.ErrTimeout) {
		return nil, fmt.Errorf("bolt: open %s: file is locked by another process: %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	log, err := wal.Open(path + ".wal")
	if err != nil {
		return nil, errors.Join(err, db.Close())
	}
	rev, err := initialize(db, log, opts.Now())
	if err != nil {
		return nil, errors.Join(fmt.Errorf("bolt: open %s: %w", path, err), log.Close(), db.Close())
	}
	s := &Store{
		db:    db,
		now:   opts.Now,
		hub:   newHub(rev, opts.History, opts.WatchBuffer),
		over:  newOverlay(),
		stop:  make(chan struct{}),
		swept: make(chan struct{}),
	}
	s.commits = newCommitter(db, log, s.over, opts, s.hub.publish)
	release(db) // opening walked every page to rebuild the free list
	go s.sweepLoop(opts.SweepInterval)
	return s, nil
}

// initialize creates the buckets of a new file, commits to it the changes
// the log holds beyond it, empties the log and returns the store revision.
func initialize(db *bbolt.DB, log *wal.Log, now time.Time) (int64, error) {
	var rev int64
	err := db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{itemsBucket, expiryBucket, metaBucket} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		if err := replay(tx, log, now); err != nil {
			return err
		}
		var err error
		rev, err = decodeRevision(tx.Bucket(metaBucket).Get(revisionKey))
		return err
	})
	if err == nil {
		log.Reset()
	}
	return rev, err
}

// enter admits an operation; on success the caller must call s.mu.RUnlock.
func (s *Store) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return store.ErrClosed
	}
	return nil
}

// Get returns the live item under key, or store.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) (store.Item, error) {
	if err := s.enter(ctx); err != nil {
		return store.Item{}, err
	}
	defer s.mu.RUnlock()
	s.over.mu.RLock()
	defer s.over.mu.RUnlock()
	if ev, ok := s.over.last[key]; ok {
		if it, live := liveItem(ev, s.now()); live {
			return it, nil
		}
		return store.Item{}, store.ErrNotFound
	}
	var it store.Item
	err := s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(itemsBucket).Get([]byte(key))
		if v == nil {
			return store.ErrNotFound
		}
		rec, err := decodeRecord(key, v)
		if err != nil {
			return err
		}
		if rec.expired(s.now()) {
			return store.ErrNotFound
		}
		it = rec.item(key)
		return nil
	})
	if err != nil {
		return store.Item{}, err
	}
	return it, nil
}

// liveItem returns a copy of the item a change left, unless the change is
// a deletion or the item has expired at now.
func liveItem(ev store.Event, now time.Time) (store.Item, bool) {
	if ev.Type == store.EventDelete || !ev.Item.Expires.IsZero() && !ev.Item.Expires.After(now) {
		return store.Item{}, false
	}
	it := ev.Item
	it.Value = append([]byte{}, it.Value...)
	return it, true
}

// List returns the live items under prefix, sorted by key, and the store
// revision of the listing. A listing of more than releaseAfter items
// releases the file's pages from the process's memory afterwards.
func (s *Store) List(ctx context.Context, prefix string) ([]store.Item, int64, error) {
	items, rev, err := s.list(ctx, prefix)
	if len(items) > releaseAfter {
		s.release()
	}
	return items, rev, err
}

// release releases the file's pages from the process's memory unless the
// store is closed.
func (s *Store) release() {
	if s.enter(context.Background()) == nil {
		release(s.db)
		s.mu.RUnlock()
	}
}

// list is List without the release.
func (s *Store) list(ctx context.Context, prefix string) ([]store.Item, int64, error) {
	if err := s.enter(ctx); err != nil {
		return nil, 0, err
	}
	defer s.mu.RUnlock()
	sn, err := s.snapshot(prefix)
	if err != nil {
		return nil, 0, err
	}
	defer sn.close()
	var items listing
	err = sn.each(prefix, func(k []byte, r record) error {
		items.add(items.item(k, r))
		return nil
	}, func(it store.Item) error {
		items.add(it)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return items.result(), sn.rev, nil
}

// Pages of a Scan end after scanPage items or once they hold scanPageBytes
// of values.
var scanPage = 1024

const scanPageBytes = 1 << 20

// Scan hands the live items under prefix to fn in pages, all read at one
// store revision (see store.Store): from one bbolt read transaction and
// the overlay's changes taken with it, so every write acknowledged before
// the call is in it however long fn takes, while writes go on. Every
// releaseAfter items read, and at the end of a scan of more, it releases
// the file's pages from the process's memory, as a large List does.
func (s *Store) Scan(ctx context.Context, prefix string, fn store.ScanFunc) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	sn, err := s.snapshot(prefix)
	if err != nil {
		return err
	}
	defer sn.close()
	var (
		page          []store.Item
		size          int  // bytes of values in page
		unreleased    int  // items read since the last release
		called, large bool // fn was called; a release was
	)
	flush := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if unreleased += len(page); unreleased >= releaseAfter {
			releaseIn(s.db, sn.tx)
			unreleased, large = 0, true
		}
		p := page
		page, size, called = nil, 0, true
		return fn(sn.rev, p)
	}
	add := func(it store.Item) error {
		page = append(page, it)
		if size += len(it.Value); len(page) < scanPage && size < scanPageBytes {
			return nil
		}
		return flush()
	}
	err = sn.each(prefix, func(k []byte, r record) error { return add(r.item(string(k))) }, add)
	if err == nil && (len(page) > 0 || !called) {
		err = flush()
	}
	if large && unreleased > 0 {
		releaseIn(s.db, sn.tx)
	}
	return err
}

// snapshot is a read of the store at one revision: a bbolt read
// transaction and the changes of the overlay it lacks, taken together.
type snapshot struct {
	tx      *bbolt.Tx
	rev     int64
	changed []store.Event // the overlay's changes under the prefix, by key
	now     time.Time
}

// snapshot begins a read of the items under prefix. The caller has
// entered the store and must close the snapshot.
//
// Taken under the overlay's lock, the transaction and the overlay agree:
// the committer adds a commit's changes to the overlay under that lock,
// and a flush commits the bbolt file (which then holds what the overlay
// holds) before it clears the overlay under that lock. Once begun, the
// transaction keeps its view and the changes taken are never modified,
// so the lock is not held while the snapshot is read.
func (s *Store) snapshot(prefix string) (*snapshot, error) {
	s.over.mu.RLock()
	defer s.over.mu.RUnlock()
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil, err
	}
	rev, err := decodeRevision(tx.Bucket(metaBucket).Get(revisionKey))
	if err != nil {
		return nil, errors.Join(err, tx.Rollback())
	}
	return &snapshot{tx: tx, rev: max(rev, s.over.revision), changed: s.over.under(prefix), now: s.now()}, nil
}

// close ends the read transaction.
func (sn *snapshot) close() { _ = sn.tx.Rollback() }

// each walks the live items under prefix in key order: it calls stored
// with each record of the file that no change replaces (its value valid
// only during the call) and changed with the item, a copy, of each
// change that left one, until either returns an error, which each
// returns.
func (sn *snapshot) each(prefix string, stored func(k []byte, r record) error, changed func(store.Item) error) error {
	pending := sn.changed
	next := func() error {
		ev := pending[0]
		pending = pending[1:]
		if it, ok := liveItem(ev, sn.now); ok {
			return changed(it)
		}
		return nil
	}
	c := sn.tx.Bucket(itemsBucket).Cursor()
	for k, v := c.Seek([]byte(prefix)); k != nil && strings.HasPrefix(string(k), prefix); k, v = c.Next() {
		for len(pending) > 0 && pending[0].Item.Key < string(k) {
			if err := next(); err != nil {
				return err
			}
		}
		if len(pending) > 0 && pending[0].Item.Key == string(k) { // changed since the last flush
			if err := next(); err != nil {
				return err
			}
			continue
		}
		rec, ok := parseRecord(v)
		if !ok {
			return errCorrupt(string(k))
		}
		if !rec.expired(sn.now) {
			if err := stored(k, rec); err != nil {
				return err
			}
		}
	}
	for len(pending) > 0 {
		if err := next(); err != nil {
			return err
		}
	}
	return nil
}

// Watch delivers every change under prefix from fromRevision on. A
// revision older than the retained history gives store.ErrCompacted.
// Event values are shared between watchers and must not be modified.
func (s *Store) Watch(ctx context.Context, prefix string, fromRevision int64) (store.Watcher, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	return s.hub.watch(ctx, prefix, fromRevision)
}

// Ping returns nil while the store is open and store.ErrClosed after Close.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	s.mu.RUnlock()
	return nil
}

// Close stops the sweeper, ends every watcher with store.ErrClosed and
// closes the file. Later calls return the result of the first.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.swept
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		logErr := s.commits.close()
		s.hub.close()
		s.closeErr = errors.Join(logErr, s.db.Close())
	})
	return s.closeErr
}
