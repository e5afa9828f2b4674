// Package wal is the write-ahead log of the bolt store: the changes
// committed since the bbolt file was last committed, kept in one file
// beside it. A change becomes durable with a sequential write of a few
// hundred bytes and one sync, where a bbolt commit writes and syncs every
// page the change touched, twice. Batching writes into one record (group
// commit) and into one bbolt transaction is the bolt store's business; the
// log stores what it is given.
//
// # Durability
//
// Append writes one record, a group of events, at the end of the log and
// returns only once the record is on disk (fdatasync on Linux, fsync
// elsewhere). When Append returns nil, its events survive a crash of the
// process or of the machine: Open finds them, and Replay returns them,
// until the owner calls Reset. When Append fails, the record is not part
// of the log (Replay skips it, the next Append overwrites it), but what
// reached the disk is unknown: after a crash Open may still find it, like
// any write whose outcome its writer did not learn.
//
// The events of a log carry strictly increasing revisions: each record
// must start above the last revision of the one before, and the records
// appended after a Reset above every record before it. The store's
// revision counter guarantees both.
//
// # Truncation and reuse of blocks
//
// The owner calls Reset once every event of the log is durable elsewhere
// (the bolt store: once its bbolt transaction committed). Reset writes
// nothing: the next record is written at the beginning of the file,
// which keeps its size, so records overwrite allocated blocks and their
// sync does not also have to journal a new file size. The records left
// behind the new end are not part of the log: a record of them that
// starts where the log ends carries revisions not above those before it,
// and where the end falls inside one of them the bytes read as a header
// fail the checksum (but for a 2^-32 chance). Close truncates the file to
// zero length when the log is empty (after a Reset, before any Append).
//
// # Recovery
//
// Open reads the file from its beginning and ends the log at the first
// record that is cut short, has a zero or absurd length, fails its
// checksum (a write interrupted by a crash, never acknowledged; a zeroed
// or garbage block), or whose first revision is not above the last one
// before it (a record from before a Reset). The next Append writes
// there, over the torn tail. A record that passes its checksum but does
// not decode is corruption, not a torn write: Open refuses the file
// rather than drop what follows it.
//
// Replay hands the events of the log to a function in the order they
// were appended: after Open, every event acknowledged since the last
// Reset. If the process stopped after a Reset and before the next
// Append, the log Open finds is the one from before that Reset, whose
// events are already durable elsewhere: whoever replays must skip the
// revisions it already holds.
//
// # Format
//
// A record is a 4-byte big-endian payload length, the CRC-32C
// (Castagnoli) of the payload, and the payload: its events back to back,
// each a type byte (store.EventPut or store.EventDelete), the revision,
// the key, and for a put the expiry (Unix ns as ExpiryNanos gives it, 0
// for none) and the value. Integers are unsigned varints; byte strings a
// varint length and the bytes.
package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Log is an open write-ahead log. It is not safe for concurrent use.
type Log struct {
	f    *os.File
	size int64  // end of the last record of the log
	buf  []byte // reused encoding buffer
}

// header is the length and checksum in front of each payload.
const header = 8

// maxRecord bounds the payload length read back, so that garbage cannot
// ask for an absurd allocation.
const maxRecord = 1 << 30

var (
	table = crc32.MakeTable(crc32.Castagnoli)
	// ErrCorrupt is returned for a record that passes its checksum but
	// does not decode.
	ErrCorrupt = errors.New("wal: corrupt record")
)

// Open opens or creates the log at path (mode 0600) and finds its end.
func Open(path string) (*Log, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("wal: open %s: %w", path, err)
	}
	l := &Log{f: f}
	if l.size, err = l.scan(math.MaxInt64, nil); err != nil {
		return nil, errors.Join(fmt.Errorf("wal: open %s: %w", path, err), f.Close())
	}
	return l, nil
}

// Size returns the length in bytes of the records of the log: 0 when it
// is empty.
func (l *Log) Size() int64 { return l.size }

// Replay hands fn every event of the log, in the order appended, and
// stops at the first error fn returns.
func (l *Log) Replay(fn func(store.Event) error) error {
	_, err := l.scan(l.size, fn)
	return err
}

// scan reads the records of the file from its beginning up to end, handing
// their events to fn (when not nil), and returns the end of the last one.
func (l *Log) scan(end int64, fn func(store.Event) error) (int64, error) {
	var (
		off     int64
		lastRev int64
		head    = make([]byte, header)
	)
	for off < end {
		if _, err := l.f.ReadAt(head, off); err != nil {
			if errors.Is(err, io.EOF) {
				return off, nil
			}
			return off, err
		}
		n := binary.BigEndian.Uint32(head)
		if n == 0 || n > maxRecord {
			return off, nil
		}
		payload := make([]byte, n)
		if _, err := l.f.ReadAt(payload, off+header); err != nil {
			if errors.Is(err, io.EOF) {
				return off, nil
			}
			return off, err
		}
		if crc32.Checksum(payload, table) != binary.BigEndian.Uint32(head[4:]) {
			return off, nil
		}
		events, err := decode(payload)
		if err != nil {
			return off, err
		}
		if len(events) == 0 || events[0].Item.Revision <= lastRev {
			return off, nil
		}
		if fn != nil {
			for _, ev := range events {
				if err := fn(ev); err != nil {
					return off, err
				}
			}
		}
		lastRev = events[len(events)-1].Item.Revision
		off += header + int64(n)
	}
	return off, nil
}

// Append writes events as one record at the end of the log and syncs it;
// see the package comment for what its result promises. Appending no
// events writes nothing.
func (l *Log) Append(events []store.Event) error {
	if len(events) == 0 {
		return nil
	}
	b := append(l.buf[:0], make([]byte, header)...)
	for _, ev := range events {
		b = appendEvent(b, ev)
	}
	payload := b[header:]
	binary.BigEndian.PutUint32(b, uint32(len(payload)))
	binary.BigEndian.PutUint32(b[4:], crc32.Checksum(payload, table))
	l.buf = b
	_, err := l.f.WriteAt(b, l.size)
	if err == nil {
		err = fdatasync(l.f)
	}
	if err != nil {
		return fmt.Errorf("wal: append: %w", err)
	}
	l.size += int64(len(b))
	return nil
}

// Reset empties the log once every event in it is durable elsewhere. The
// next record is written at the beginning of the file, over the blocks of
// the old ones.
func (l *Log) Reset() { l.size = 0 }

// Close closes the file, truncating it when the log is empty.
func (l *Log) Close() error {
	var err error
	if l.size == 0 {
		err = l.f.Truncate(0)
	}
	return errors.Join(err, l.f.Close())
}
