package etcd

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/gatehouse/gatehouse/internal/store"
)

// An envelope is the etcd value of an item: a format byte, the expiry in
// Unix nanoseconds (8 bytes, big endian, 0 for none) and the item's value.
const (
	envelopeFormat = 1
	envelopeHeader = 9
)

func encodeEnvelope(item store.Item) string {
	b := make([]byte, envelopeHeader+len(item.Value))
	b[0] = envelopeFormat
	binary.BigEndian.PutUint64(b[1:envelopeHeader], uint64(expiryNanos(item.Expires)))
	copy(b[envelopeHeader:], item.Value)
	return string(b)
}

// decode turns a key-value read under the prefix into the stored item.
func (s *Store) decode(kv *mvccpb.KeyValue) (*store.Item, error) {
	key, ok := strings.CutPrefix(string(kv.Key), s.prefix)
	b := kv.Value
	if !ok || len(b) < envelopeHeader || b[0] != envelopeFormat {
		return nil, fmt.Errorf("etcd: key %q does not hold a Gatehouse item", kv.Key)
	}
	it := store.Item{Key: key, Value: b[envelopeHeader:], Revision: kv.ModRevision}
	if exp := int64(binary.BigEndian.Uint64(b[1:envelopeHeader])); exp != 0 {
		it.Expires = time.Unix(0, exp)
	}
	return &it, nil
}

// expiryNanos converts an expiry to positive Unix nanoseconds, clamping
// instants outside the representable range; the zero time is 0.
func expiryNanos(t time.Time) int64 {
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
