package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// Table is an in-memory mirror of the records under one prefix, decoded
// into *T and kept current by Follow. Reads take a read lock only, so hot
// paths can consult it on every request. Callers must not modify the
// records it returns.
type Table[T any] struct {
	prefix string
	decode func(Item) (*T, bool)
	mu     sync.RWMutex
	m      map[string]*T
	feed   *Follower
}

// NewTable returns an empty table of the records under prefix; decode
// turns an item into a record (false skips the item).
func NewTable[T any](prefix string, decode func(Item) (*T, bool)) *Table[T] {
	return &Table[T]{prefix: prefix, decode: decode, m: map[string]*T{}}
}

// DecodeJSON decodes an item's value as JSON into a new T.
func DecodeJSON[T any](it Item) (*T, bool) {
	rec := new(T)
	if err := json.Unmarshal(it.Value, rec); err != nil {
		return nil, false
	}
	return rec, true
}

// Follow loads the table from s and keeps it current until ctx ends.
// Each handler of also sees every listing and change the table sees,
// right after the table, from the same change feed: a second view of
// the prefix without a second watch.
func (t *Table[T]) Follow(ctx context.Context, s Store, also ...Handler) error {
	var h Handler = t
	if len(also) > 0 {
		h = handlers(append([]Handler{t}, also...))
	}
	f, err := Follow(ctx, s, t.prefix, h)
	if err != nil {
		return fmt.Errorf("load %s: %w", t.prefix, err)
	}
	t.feed = f
	return nil
}

// SyncTimeout bounds how long Sync waits for the change feed.
const SyncTimeout = 5 * time.Second

// Sync waits (at most SyncTimeout) until the table applied revision rev of
// a write under its prefix, so the write is visible to the next reader.
func (t *Table[T]) Sync(ctx context.Context, rev int64) error {
	ctx, cancel := context.WithTimeout(ctx, SyncTimeout)
	defer cancel()
	return t.feed.WaitFor(ctx, rev)
}

// Healthy reports whether the table is connected to the change feed.
func (t *Table[T]) Healthy() bool { return t.feed != nil && t.feed.Healthy() }

// Reset implements Handler.
func (t *Table[T]) Reset(items []Item) {
	m := make(map[string]*T, len(items))
	for _, it := range items {
		if rec, ok := t.decode(it); ok {
			m[it.Key[len(t.prefix):]] = rec
		}
	}
	t.mu.Lock()
	t.m = m
	t.mu.Unlock()
}

// Apply implements Handler.
func (t *Table[T]) Apply(ev Event) {
	name := ev.Item.Key[len(t.prefix):]
	var rec *T
	ok := false
	if ev.Type == EventPut {
		rec, ok = t.decode(ev.Item)
	}
	t.mu.Lock()
	if ok {
		t.m[name] = rec
	} else {
		delete(t.m, name)
	}
	t.mu.Unlock()
}

// Get returns the record stored under prefix+name.
func (t *Table[T]) Get(name string) (*T, bool) {
	t.mu.RLock()
	rec, ok := t.m[name]
	t.mu.RUnlock()
	return rec, ok
}

// Has reports whether a record is stored under prefix+name.
func (t *Table[T]) Has(name string) bool {
	_, ok := t.Get(name)
	return ok
}

// Len returns the number of records.
func (t *Table[T]) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}

// Values returns every record, in no particular order.
func (t *Table[T]) Values() []*T {
	t.mu.RLock()
	out := make([]*T, 0, len(t.m))
	for _, rec := range t.m {
		out = append(out, rec)
	}
	t.mu.RUnlock()
	return out
}

// Range calls fn with the name (the key without the prefix) and record
// of every record, in no particular order, under the table's read lock:
// fn must not call into the table.
func (t *Table[T]) Range(fn func(name string, rec *T)) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for name, rec := range t.m {
		fn(name, rec)
	}
}

// EncodeJSON encodes a record as JSON. Records are plain structs, so a
// failure is a programming error and panics.
func EncodeJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("store: encode record: " + err.Error())
	}
	return b
}
