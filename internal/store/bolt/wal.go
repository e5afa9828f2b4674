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
// the log before its writers are answered: a sequential append of a few
// hundred bytes per write, where a bbolt commit writes and syncs every
// page the writes touched, twice. The bbolt file is committed every flush
// interval, after which the log is emptied.
//
// A record is a 4-byte big-endian payload length, the CRC-32C of the
// payload, and the payload: the commit's events, each a type byte, the
// revision, the key, and for a put the expiry (Unix ns, 0 for none) and
// the value, integers as varints and byte strings length-prefixed. A
// record cut short by a crash fails its length or checksum; it was never
// acknowledged, and reading stops there.
type wal struct {
	f    *os.File
	size int64  // end of the last whole record
	buf  []byte // reused encoding buffer
	// broken is set when a failed append could not be undone: a partial
	// record would hide every record written after it.
	broken error
}

const walHeader = 8

// maxWALRecord bounds the payload length read back, so that garbage cannot
// ask for an absurd allocation.
const maxWALRecord = 1 << 30

var (
	walTable   = crc32.MakeTable(crc32.Castagnoli)
	errWALTorn = errors.New("bolt: torn write-ahead log record")
)

// openWAL opens or creates the log at path and cuts off a torn tail.
func openWAL(path string) (*wal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("bolt: open write-ahead log: %w", err)
	}
	l := &wal{f: f}
	end, err := l.scan(nil)
	if err == nil {
		err = l.cut(end)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("bolt: open write-ahead log: %w", err), f.Close())
	}
	return l, nil
}

// scan reads the whole records from the start of the log, handing each
// event to fn (when not nil), and returns the end of the last whole record.
func (l *wal) scan(fn func(store.Event) error) (int64, error) {
	var off int64
	head := make([]byte, walHeader)
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
		if fn != nil {
			if err := decodeWALRecord(payload, fn); err != nil {
				return off, err
			}
		}
		off += walHeader + int64(n)
	}
}

// cut truncates the log at end and syncs it.
func (l *wal) cut(end int64) error {
	if err := l.f.Truncate(end); err != nil {
		return err
	}
	if err := fdatasync(l.f); err != nil {
		return err
	}
	l.size = end
	return nil
}

// append writes one record of events and syncs it. A failed append is
// undone, or else the log refuses every later append.
func (l *wal) append(events []store.Event) error {
	if l.broken != nil {
		return l.broken
	}
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
		if cutErr := l.cut(l.size); cutErr != nil {
			l.broken = fmt.Errorf("bolt: write-ahead log unusable after a failed write: %w", cutErr)
		}
		return fmt.Errorf("bolt: write-ahead log: %w", err)
	}
	l.size += int64(len(b))
	return nil
}

// reset empties the log once the bbolt file holds every change in it. If
// that fails the records stay; replaying them later skips them.
func (l *wal) reset() {
	if l.size > 0 && l.broken == nil {
		_ = l.cut(0)
	}
}

func (l *wal) close() error { return l.f.Close() }

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

// decodeWALRecord hands each event of a checksummed payload to fn.
func decodeWALRecord(p []byte, fn func(store.Event) error) error {
	for len(p) > 0 {
		var ev store.Event
		ev.Type = store.EventType(p[0])
		p = p[1:]
		rev, p1, ok := uvarint(p)
		key, p2, ok2 := bytesField(p1)
		if !ok || !ok2 || (ev.Type != store.EventPut && ev.Type != store.EventDelete) {
			return errWALTorn
		}
		ev.Item = store.Item{Key: string(key), Revision: int64(rev)}
		p = p2
		if ev.Type == store.EventPut {
			exp, p3, ok := uvarint(p)
			val, p4, ok2 := bytesField(p3)
			if !ok || !ok2 {
				return errWALTorn
			}
			ev.Item.Value = append([]byte{}, val...)
			if exp != 0 {
				ev.Item.Expires = time.Unix(0, int64(exp))
			}
			p = p4
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	return nil
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
