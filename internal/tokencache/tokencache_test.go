package tokencache

import (
	"encoding/binary"
	"testing"
	"time"
)

// keyIn returns a distinct key in shard sh.
func keyIn(sh byte, n uint64) Key {
	var k Key
	k[0] = sh
	binary.BigEndian.PutUint64(k[1:], n)
	return k
}

func identity(t time.Time) time.Time { return t }

func TestBound(t *testing.T) {
	t.Parallel()
	now := time.Now()
	for _, size := range []int{0, 1, 64, 1000} {
		c := New(size, identity)
		for i := range uint64(5000) {
			k := KeyOf(string(binary.BigEndian.AppendUint64(nil, i)))
			c.Put(k, now.Add(time.Hour), now)
			if _, ok := c.Get(k); !ok {
				t.Fatalf("size %d: entry %d not found right after put", size, i)
			}
		}
		if limit := max(size/shards, 1) * shards; c.Len() > limit {
			t.Fatalf("size %d: %d entries, bound %d", size, c.Len(), limit)
		}
	}
}

func TestEvictsExpiredFirst(t *testing.T) {
	t.Parallel()
	const per = 4
	c := New(per*shards, identity)
	now := time.Now()
	live, dead := now.Add(time.Hour), now.Add(-time.Second)
	var liveKeys []Key
	for i := range uint64(per - 1) {
		k := keyIn(7, i)
		c.Put(k, live, now)
		liveKeys = append(liveKeys, k)
	}
	c.Put(keyIn(7, 100), dead, now)
	c.Put(keyIn(8, 0), live, now) // another shard is not affected

	// The shard is full: the next entry drops the expired one only.
	c.Put(keyIn(7, 200), live, now)
	if c.Len() != per+1 {
		t.Fatalf("%d entries, want %d", c.Len(), per+1)
	}
	for _, k := range append(liveKeys, keyIn(7, 200), keyIn(8, 0)) {
		if _, ok := c.Get(k); !ok {
			t.Fatalf("live entry %x evicted while an expired one was there", k[:9])
		}
	}
	// Full of live entries: one is dropped, the shard stays at its bound.
	c.Put(keyIn(7, 300), live, now)
	if n := len(c.shard(&liveKeys[0]).m); n != per {
		t.Fatalf("shard holds %d entries, bound %d", n, per)
	}
}
