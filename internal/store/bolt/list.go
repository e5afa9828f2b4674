package bolt

import (
	"unsafe"

	"github.com/gatehouse/gatehouse/internal/store"
)

// listChunk is the number of items beyond which a listing collects its
// items in chunks, and copies keys and values into blocks.
const listChunk = 4096

// listBlock is the size of a block keys or values of a large listing are
// copied into.
const listBlock = 1 << 20

// listing collects the items of a List. A small listing appends to one
// slice. A large one (the start-up load of a million sessions) would
// spend most of its time growing that slice, copying it at every
// doubling, and allocating two small objects per item, each memory new to
// the process: beyond listChunk items it fills chunks, copied once into a
// slice of the exact size, and copies keys and values out of bbolt into
// blocks of listBlock bytes, keys and values apart so that a caller
// keeping the keys (a table indexed by them) does not keep the values.
type listing struct {
	items        []store.Item   // the chunk being filled
	full         [][]store.Item // chunks filled before it
	n            int            // items in full
	keys, values block
}

// large reports whether the listing has grown beyond listChunk items.
func (l *listing) large() bool { return l.n > 0 || len(l.items) >= listChunk }

// add appends it to the listing.
func (l *listing) add(it store.Item) {
	if len(l.items) >= listChunk {
		l.full = append(l.full, l.items)
		l.n += len(l.items)
		l.items = make([]store.Item, 0, listChunk)
	}
	l.items = append(l.items, it)
}

// key returns a copy of the key k of an item.
func (l *listing) key(k []byte) string {
	if !l.large() {
		return string(k)
	}
	b := l.keys.copy(k)
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// item returns the item of record r under key k, its value copied.
func (l *listing) item(k []byte, r record) store.Item {
	if !l.large() {
		return r.item(string(k))
	}
	return r.itemWith(l.key(k), l.values.copy(r.value))
}

// result returns the items collected, in order.
func (l *listing) result() []store.Item {
	if len(l.full) == 0 {
		return l.items
	}
	out := make([]store.Item, 0, l.n+len(l.items))
	for _, c := range l.full {
		out = append(out, c...)
	}
	return append(out, l.items...)
}

// block hands out copies of byte strings from blocks of listBlock bytes.
type block struct{ b []byte }

// copy returns a copy of src whose capacity is its length, so that an
// append by the caller cannot write into the block.
func (k *block) copy(src []byte) []byte {
	if len(src) > listBlock/64 {
		return append([]byte(nil), src...)
	}
	if cap(k.b)-len(k.b) < len(src) {
		k.b = make([]byte, 0, listBlock)
	}
	n := len(k.b)
	k.b = append(k.b, src...)
	return k.b[n:len(k.b):len(k.b)]
}
