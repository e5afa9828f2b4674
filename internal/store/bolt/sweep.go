package bolt

import (
	"bytes"
	"context"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/bolt/wal"
)

// sweepLimit bounds how many expired items one sweep transaction deletes.
const sweepLimit = 1000

// sweepLoop deletes expired items every interval until the store closes.
func (s *Store) sweepLoop(every time.Duration) {
	defer close(s.swept)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sweep()
		}
	}
}

// sweep deletes every expired item, each with a Delete event. A failed
// sweep is retried on the next tick; expired items stay invisible to
// reads meanwhile.
func (s *Store) sweep() {
	for {
		more, err := s.sweepOnce()
		if err != nil || !more {
			return
		}
	}
}

// sweepOnce deletes up to sweepLimit expired items and reports whether
// more are due. It runs as a write, which sees the changes not yet
// flushed to the bbolt file, and writes nothing to disk when none is due.
func (s *Store) sweepOnce() (bool, error) {
	var more bool
	err := s.write(context.Background(), func(w *writeTx) error {
		var entries [][]byte
		entries, more = w.dueEntries(sweepLimit)
		for _, e := range entries {
			if err := w.expire(e); err != nil {
				return err
			}
		}
		return nil
	})
	return more, err
}

// isDue reports whether an expiry index entry is at or before now.
func isDue(entry []byte, now time.Time) bool {
	exp, _ := splitExpiryKey(entry)
	return exp <= wal.ExpiryNanos(now)
}

// dueEntries returns copies of up to limit expiry index entries that are
// due, and whether more are due beyond them.
func (w *writeTx) dueEntries(limit int) ([][]byte, bool) {
	var entries [][]byte
	c := w.expiry.Cursor()
	for k, _ := c.First(); k != nil && isDue(k, w.now); k, _ = c.Next() {
		if len(entries) == limit {
			return entries, true
		}
		entries = append(entries, bytes.Clone(k))
	}
	return entries, false
}

// expire deletes the item an expiry index entry points to, or drops the
// entry if the item no longer carries that expiry.
func (w *writeTx) expire(entry []byte) error {
	exp, key := splitExpiryKey(entry)
	rec, ok, err := w.lookup(key)
	if err != nil {
		return err
	}
	if ok && rec.expires == exp {
		return w.remove(key, rec)
	}
	w.dirty = true
	return w.expiry.Delete(entry)
}
