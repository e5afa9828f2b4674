package bolt

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/bolt/wal"
)

// A record is the stored form of an item: the revision (8 bytes, big
// endian), the expiry in Unix nanoseconds as wal.ExpiryNanos gives it (8
// bytes, big endian, 0 for none) and the value.
const recordHeader = 16

// record is a decoded envelope. Its value aliases bbolt memory and is only
// valid inside the transaction that read it.
type record struct {
	revision int64
	expires  int64
	value    []byte
}

func encodeRecord(item store.Item) []byte {
	b := make([]byte, recordHeader+len(item.Value))
	binary.BigEndian.PutUint64(b[0:8], uint64(item.Revision))
	binary.BigEndian.PutUint64(b[8:16], uint64(wal.ExpiryNanos(item.Expires)))
	copy(b[recordHeader:], item.Value)
	return b
}

func decodeRecord(key string, b []byte) (record, error) {
	r, ok := parseRecord(b)
	if !ok {
		return record{}, errCorrupt(key)
	}
	return r, nil
}

// parseRecord is decodeRecord without the error.
func parseRecord(b []byte) (record, bool) {
	if len(b) < recordHeader {
		return record{}, false
	}
	return record{
		revision: int64(binary.BigEndian.Uint64(b[0:8])),
		expires:  int64(binary.BigEndian.Uint64(b[8:16])),
		value:    b[recordHeader:],
	}, true
}

// errCorrupt is the error of an unreadable record under key.
func errCorrupt(key string) error { return fmt.Errorf("bolt: corrupt record under %q", key) }

// expired reports whether the record has an expiry at or before now.
func (r record) expired(now time.Time) bool {
	return r.expires != 0 && r.expires <= wal.ExpiryNanos(now)
}

// item returns the record as an Item, copying the value out of bbolt memory.
func (r record) item(key string) store.Item {
	return r.itemWith(key, append([]byte{}, r.value...))
}

// itemWith returns the record as an Item of value, a copy of its value.
func (r record) itemWith(key string, value []byte) store.Item {
	it := store.Item{Key: key, Value: value, Revision: r.revision}
	if r.expires != 0 {
		it.Expires = time.Unix(0, r.expires)
	}
	return it
}

// expiryKey is the expiry index key of an item: its expiry followed by its
// key, so a cursor walks the index in expiry order.
func expiryKey(expires int64, key string) []byte {
	b := make([]byte, 8+len(key))
	binary.BigEndian.PutUint64(b, uint64(expires))
	copy(b[8:], key)
	return b
}

// splitExpiryKey is the inverse of expiryKey.
func splitExpiryKey(b []byte) (expires int64, key string) {
	return int64(binary.BigEndian.Uint64(b[:8])), string(b[8:])
}

func encodeRevision(rev int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(rev))
}

func decodeRevision(b []byte) (int64, error) {
	switch len(b) {
	case 0:
		return 0, nil
	case 8:
		return int64(binary.BigEndian.Uint64(b)), nil
	}
	return 0, fmt.Errorf("bolt: corrupt store revision")
}
