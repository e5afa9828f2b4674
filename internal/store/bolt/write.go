package bolt

import (
	"context"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/bolt/wal"
)

var (
	errEmptyKey   = errors.New("bolt: empty key")
	errKeyTooLong = fmt.Errorf("bolt: key longer than %d bytes", maxKeyLen)
	errValueLarge = fmt.Errorf("bolt: value larger than %d bytes", maxValueLen)
)

// The longest key and value bbolt takes, less what the expiry index and the
// record header add.
const (
	maxKeyLen   = bbolt.MaxKeySize - 8
	maxValueLen = bbolt.MaxValueSize - recordHeader
)

// fillPercent is how full split pages are left.
const fillPercent = 0.9

// writeTx is one write operation's view of a write transaction. Operations
// committed together share the transaction, each with its own writeTx.
type writeTx struct {
	items, expiry, meta *bbolt.Bucket
	now                 time.Time
	revision            int64         // store revision after this operation's changes
	events              []store.Event // changes made, in revision order
	dirty               bool          // the transaction was modified
}

func newWriteTx(tx *bbolt.Tx, now time.Time) (*writeTx, error) {
	w := &writeTx{
		items:  tx.Bucket(itemsBucket),
		expiry: tx.Bucket(expiryBucket),
		meta:   tx.Bucket(metaBucket),
		now:    now,
	}
	// Keys mostly arrive in order (audit records and the expiry index by
	// time, generated names by counter), and bbolt's default of splitting
	// pages half full would leave half of every page empty.
	w.items.FillPercent, w.expiry.FillPercent = fillPercent, fillPercent
	var err error
	w.revision, err = decodeRevision(w.meta.Get(revisionKey))
	return w, err
}

// write runs op in a group-committed write transaction and, once the
// commit succeeded, publishes the events op produced. An error op returns
// before modifying anything is returned as is without failing the other
// writes of the commit; an error after a modification rolls op's changes
// back.
func (s *Store) write(ctx context.Context, op func(w *writeTx) error) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	return s.commits.write(op)
}

// lookup returns the stored record under key, expired or not.
func (w *writeTx) lookup(key string) (record, bool, error) {
	v := w.items.Get([]byte(key))
	if v == nil {
		return record{}, false, nil
	}
	rec, err := decodeRecord(key, v)
	return rec, err == nil, err
}

// alive reports whether a record lookup returned (found or not) is live.
func (w *writeTx) alive(rec record, found bool) bool {
	return found && !rec.expired(w.now)
}

// set stores item under the next revision, whatever its key holds.
func (w *writeTx) set(item store.Item) (store.Item, error) {
	old, found, err := w.lookup(item.Key)
	if err != nil {
		return store.Item{}, err
	}
	return w.put(item, old, found)
}

// put stores item under the next revision and returns it with that
// revision; old and found are what lookup returned for its key.
func (w *writeTx) put(item store.Item, old record, found bool) (store.Item, error) {
	switch {
	case item.Key == "":
		return store.Item{}, errEmptyKey
	case len(item.Key) > maxKeyLen:
		return store.Item{}, errKeyTooLong
	case len(item.Value) > maxValueLen:
		return store.Item{}, errValueLarge
	}
	w.dirty = true
	if found {
		if err := w.unindex(old, item.Key); err != nil {
			return store.Item{}, err
		}
	}
	item.Revision = w.revision + 1
	if err := w.items.Put([]byte(item.Key), encodeRecord(item)); err != nil {
		return store.Item{}, err
	}
	if exp := wal.ExpiryNanos(item.Expires); exp != 0 {
		if err := w.expiry.Put(expiryKey(exp, item.Key), nil); err != nil {
			return store.Item{}, err
		}
	}
	ev := item
	ev.Value = append([]byte{}, item.Value...)
	w.record(store.Event{Type: store.EventPut, Item: ev})
	return item, nil
}

// remove deletes the stored record under key with the next revision.
func (w *writeTx) remove(key string, rec record) error {
	w.dirty = true
	if err := w.unindex(rec, key); err != nil {
		return err
	}
	if err := w.items.Delete([]byte(key)); err != nil {
		return err
	}
	w.record(store.Event{Type: store.EventDelete, Item: store.Item{Key: key, Revision: w.revision + 1}})
	return nil
}

// replay applies a change read back from the write-ahead log, skipping
// one the transaction already holds.
func (w *writeTx) replay(ev store.Event) error {
	rev := ev.Item.Revision
	switch {
	case rev <= w.revision:
		return nil
	case rev != w.revision+1:
		return fmt.Errorf("bolt: write-ahead log skips from revision %d to %d", w.revision, rev)
	case ev.Type == store.EventPut:
		_, err := w.set(ev.Item)
		return err
	}
	rec, ok, err := w.lookup(ev.Item.Key)
	if err != nil || !ok {
		w.revision = rev
		return err
	}
	return w.remove(ev.Item.Key, rec)
}

// unindex drops the expiry index entry of a stored record.
func (w *writeTx) unindex(rec record, key string) error {
	if rec.expires == 0 {
		return nil
	}
	return w.expiry.Delete(expiryKey(rec.expires, key))
}

func (w *writeTx) record(ev store.Event) {
	w.revision = ev.Item.Revision
	w.events = append(w.events, ev)
}

// Create stores item only if no live item exists under its key.
func (s *Store) Create(ctx context.Context, item store.Item) (store.Item, error) {
	return s.writeItem(ctx, func(w *writeTx) (store.Item, error) {
		old, found, err := w.lookup(item.Key)
		switch {
		case err != nil:
			return store.Item{}, err
		case w.alive(old, found):
			return store.Item{}, store.ErrExists
		}
		return w.put(item, old, found)
	})
}

// Put stores item unconditionally.
func (s *Store) Put(ctx context.Context, item store.Item) (store.Item, error) {
	return s.writeItem(ctx, func(w *writeTx) (store.Item, error) {
		return w.set(item)
	})
}

// CompareAndSwap replaces the live item under item.Key if its revision is
// expected.
func (s *Store) CompareAndSwap(ctx context.Context, expected int64, item store.Item) (store.Item, error) {
	return s.writeItem(ctx, func(w *writeTx) (store.Item, error) {
		old, found, err := w.lookup(item.Key)
		switch {
		case err != nil:
			return store.Item{}, err
		case !w.alive(old, found):
			return store.Item{}, store.ErrNotFound
		case old.revision != expected:
			return store.Item{}, store.ErrConflict
		}
		return w.put(item, old, found)
	})
}

// Update applies fn to the live item under key inside the write
// transaction, so no concurrent write is lost. fn must be quick and must
// not call the store: it holds up every write committed with it.
func (s *Store) Update(ctx context.Context, key string, fn store.UpdateFunc) (store.Item, error) {
	return s.writeItem(ctx, updateOp(key, fn))
}

// updateOp is the operation of Update.
func updateOp(key string, fn store.UpdateFunc) func(w *writeTx) (store.Item, error) {
	return func(w *writeTx) (store.Item, error) {
		rec, found, err := w.lookup(key)
		if err != nil {
			return store.Item{}, err
		}
		ok := w.alive(rec, found)
		var cur *store.Item
		if ok {
			it := rec.item(key)
			cur = &it
		}
		next, err := fn(cur)
		switch {
		case err != nil:
			return store.Item{}, err
		case next != nil:
			it := *next
			it.Key = key
			return w.put(it, rec, found)
		case ok:
			err := w.remove(key, rec)
			return store.Item{Key: key, Revision: w.revision}, err
		}
		return store.Item{}, nil
	}
}

// Delete removes the live item under key.
func (s *Store) Delete(ctx context.Context, key string) error {
	return s.write(ctx, func(w *writeTx) error {
		rec, found, err := w.lookup(key)
		switch {
		case err != nil:
			return err
		case !w.alive(rec, found):
			return store.ErrNotFound
		}
		return w.remove(key, rec)
	})
}

// writeItem runs a write that produces one item.
func (s *Store) writeItem(ctx context.Context, op func(w *writeTx) (store.Item, error)) (store.Item, error) {
	var out store.Item
	err := s.write(ctx, func(w *writeTx) error {
		var err error
		out, err = op(w)
		return err
	})
	if err != nil {
		return store.Item{}, err
	}
	return out, nil
}
