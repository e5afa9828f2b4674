package wal

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// ExpiryNanos converts an expiry to positive Unix nanoseconds, clamping
// instants outside the representable range; the zero time is 0. The log
// stores expiries this way, and the bolt store's file does too.
func ExpiryNanos(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case !t.After(time.Unix(0, 0)):
		return 1
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

func appendEvent(b []byte, ev store.Event) []byte {
	b = append(b, byte(ev.Type))
	b = binary.AppendUvarint(b, uint64(ev.Item.Revision))
	b = binary.AppendUvarint(b, uint64(len(ev.Item.Key)))
	b = append(b, ev.Item.Key...)
	if ev.Type == store.EventPut {
		b = binary.AppendUvarint(b, uint64(ExpiryNanos(ev.Item.Expires)))
		b = binary.AppendUvarint(b, uint64(len(ev.Item.Value)))
		b = append(b, ev.Item.Value...)
	}
	return b
}

// decode returns the events of a checksummed payload.
func decode(p []byte) ([]store.Event, error) {
	var events []store.Event
	for len(p) > 0 {
		var ev store.Event
		ev.Type = store.EventType(p[0])
		p = p[1:]
		rev, p1, ok := uvarint(p)
		key, p2, ok2 := bytesField(p1)
		if !ok || !ok2 || (ev.Type != store.EventPut && ev.Type != store.EventDelete) {
			return nil, ErrCorrupt
		}
		ev.Item = store.Item{Key: string(key), Revision: int64(rev)}
		p = p2
		if ev.Type == store.EventPut {
			exp, p3, ok := uvarint(p)
			val, p4, ok2 := bytesField(p3)
			if !ok || !ok2 {
				return nil, ErrCorrupt
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
