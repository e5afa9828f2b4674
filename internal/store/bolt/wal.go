package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// The write-ahead log holds the changes committed since the bbolt file was
// last committed. Each commit of the store appends one record and syncs
// the log before its writers are answered: a sequential write of a few
// hundred bytes per write, where a bbolt commit writes and syncs every
// page the writes touched, twice. The bbolt file is committed every flush
// interval, after which the log starts again from its beginning. The file
// keeps its size, so that records overwrite allocated blocks and a sync
// does not also have to journal a new file size; a clean close truncates
// it.
//
// A record is a 4-byte big-endian payload length, the CRC-32C of the
// payload, and the payload: the commit's events, each a type byte, the
// revision, the key, and for a put the expiry (Unix ns, 0 for none) and
// the value, integers as varints and byte strings length-prefixed. The log
// ends at the first record that is cut short or fails its checksum (a
// write interrupted by a crash, never acknowledged), or whose revisions do
// not follow those before it (a record left from before the log started
// again).
type wal struct {
	f    *os.File
	size int64  // end of the last record of the log
	buf  []byte // reused encoding buffer
}

const walHeader = 8

// maxWALRecord bounds the payload length read back, so that garbage cannot
// ask for an absurd allocation.
const maxWALRecord = 1 << 30

var (
	walTable      = crc32.MakeTable(crc32.Castagnoli)
	errWALCorrupt = errors.New("bolt: corrupt write-ahead log record")
)

// openWAL opens or creates the log at path and finds its end.
func openWAL(path string) (*wal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("bolt: open write-ahead log: %w", err)
	}
	l := &wal{f: f}
	if l.size, err = l.scan(nil); err != nil {
		return nil, errors.Join(fmt.Errorf("bolt: open write-ahead log: %w", err), f.Close())
	}
	return l, nil
}

// scan reads the records of the log from its beginning, handing their
// events to fn (when not nil), and returns the end of the last one.
func (l *wal) scan(fn func(store.Event) error) (int64, error) {
	var (
		off     int64
		lastRev int64
		head    = make([]byte, walHeader)
	)
	for {
		if _, err := l.f.ReadAt(head, off); err != nil {
			if errors.Is(err, io.EOF) {
				return off, nil
			}
			return off, err
		}
		n := binary.BigEndian.Uint32(head)
		if n == 0 || n > maxWALRecord {
			return off, nil
		}
		payload := make([]byte, n)
		if _, err := l.f.ReadAt(payload, off+walHeader); err != nil {
			if errors.Is(err, io.EOF) {
				return off, nil
			}
			return off, err
		}
		if crc32.Checksum(payload, walTable) != binary.BigEndian.Uint32(head[4:]) {
			return off, nil
		}
		events, err := decodeWALRecord(payload)
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
		off += walHeader + int64(n)
	}
}

// append writes one record of events at the end of the log and syncs it.
// After a failure the end stays where it was and the next record
// overwrites what was written; until then, what reached the disk is
// unknown, so a write that failed here may still be found after a crash,
// like any write whose outcome the writer did not learn.
func (l *wal) append(events []store.Event) error {
	b := append(l.buf[:0], make([]byte, walHeader)...)
	for _, ev := range events {
		b = appendWALEvent(b, ev)
	}
	payload := b[walHeader:]
	binary.BigEndian.PutUint32(b, uint32(len(payload)))
	binary.BigEndian.PutUint32(b[4:], crc32.Checksum(payload, walTable))
	l.buf = b
	_, err := l.f.WriteAt(b, l.size)
	if err == nil {
		err = fdatasync(l.f)
	}
	if err != nil {
		return fmt.Errorf("bolt: write-ahead log: %w", err)
	}
	l.size += int64(len(b))
	return nil
}

// reset starts the log again from its beginning once the bbolt file holds
// every change in it. The records left behind are skipped when read:
// their revisions are older than those of any later record.
func (l *wal) reset() { l.size = 0 }

// close closes the file, truncating it when the log is empty.
func (l *wal) close() error {
	var err error
	if l.size == 0 {
		err = l.f.Truncate(0)
	}
	return errors.Join(err, l.f.Close())
}

func appendWALEvent(b []byte, ev store.Event) []byte {
	b = append(b, byte(ev.Type))
	b = binary.AppendUvarint(b, uint64(ev.Item.Revision))
	b = binary.AppendUvarint(b, uint64(len(ev.Item.Key)))
	b = append(b, ev.Item.Key...)
	if ev.Type == store.EventPut {
		b = binary.AppendUvarint(b, uint64(expiryNanos(ev.Item.Expires)))
		b = binary.AppendUvarint(b, uint64(len(ev.Item.Value)))
		b = append(b, ev.Item.Value...)
	}
	return b
}

// decodeWALRecord returns the events of a checksummed payload.
func decodeWALRecord(p []byte) ([]store.Event, error) {
	var events []store.Event
	for len(p) > 0 {
		var ev store.Event
		ev.Type = store.EventType(p[0])
		p = p[1:]
		rev, p1, ok := uvarint(p)
		key, p2, ok2 := bytesField(p1)
		if !ok || !ok2 || (ev.Type != store.EventPut && ev.Type != store.EventDelete) {
			return nil, errWALCorrupt
		}
		ev.Item = store.Item{Key: string(key), Revision: int64(rev)}
		p = p2
		if ev.Type == store.EventPut {
			exp, p3, ok := uvarint(p)
			val, p4, ok2 := bytesField(p3)
			if !ok || !ok2 {
				return nil, errWALCorrupt
			}
			ev.Item.Value = append([]byte{}, val...)
			if exp != 0 {
				ev.Item.Expires = time.Unix(0, int64(exp))
			}
			p = p4
		}
		events = append(events, ev)
	}
	return events, nil
}

func uvarint(p []byte) (uint64, []byte, bool) {
	v, n := binary.Uvarint(p)
	if n <= 0 {
		return 0, nil, false
	}
	return v, p[n:], true
}

func bytesField(p []byte) ([]byte, []byte, bool) {
	n, p, ok := uvarint(p)
	if !ok || n > uint64(len(p)) {
		return nil, nil, false
	}
	return p[:n], p[n:], true
}
