// Package store defines Gatehouse's storage contract: a small key-value
// interface with revisions, compare-and-swap, per-item expiry and an ordered
// change feed. Domain packages own the encoding of their records; backends
// (bolt, etcd) own durability and replication. Every backend must pass the
// conformance suite in package storetest.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors returned by every backend. Callers compare with errors.Is.
var (
	// ErrNotFound: the key does not exist (or has expired).
	ErrNotFound = errors.New("store: not found")
	// ErrExists: Create found a live item under the key.
	ErrExists = errors.New("store: already exists")
	// ErrConflict: CompareAndSwap found a different revision.
	ErrConflict = errors.New("store: revision conflict")
	// ErrCompacted: Watch was asked for a revision the backend no longer
	// holds; the caller must List again and watch from the new revision.
	ErrCompacted = errors.New("store: revision compacted")
	// ErrWatchLost: a watcher fell behind or its backend connection broke;
	// the caller must List again and watch from the new revision.
	ErrWatchLost = errors.New("store: watch lost")
	// ErrUnavailable: the backend cannot be reached. Writes are refused.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
)

// Item is one record. Key and Value are set by the caller; Revision is
// set by the store on every write and is strictly increasing across the
// whole store; Expires, when non-zero, is the instant after which the item
// is no longer returned and is eventually deleted (with a Delete event).
type Item struct {
	Key      string
	Value    []byte
	Revision int64
	Expires  time.Time
}

// Expired reports whether the item has an expiry at or before now.
func (it Item) Expired(now time.Time) bool {
	return !it.Expires.IsZero() && !now.Before(it.Expires)
}

// EventType says what happened to a key.
type EventType int

const (
	// EventPut: the key was created or replaced; Event.Item is the new item.
	EventPut EventType = iota + 1
	// EventDelete: the key was deleted or expired; Event.Item carries the
	// key and the revision of the deletion, and no value.
	EventDelete
)

// Event is one committed change. Events of a store are delivered to every
// watcher in strictly increasing Item.Revision order.
type Event struct {
	Type EventType
	Item Item
}

// UpdateFunc computes the next version of a key from the current one
// (nil when the key is absent or expired). Returning (nil, nil) deletes the
// key (a no-op when it is absent). Returning an error aborts the update and
// Update returns that error unchanged. The function may be called more
// than once (on contention) and must not have side effects.
type UpdateFunc func(current *Item) (next *Item, err error)

// ScanFunc receives the pages of a Scan: rev is the store revision of the
// whole scan, page the next items in key order.
type ScanFunc func(rev int64, page []Item) error

// Store is implemented by every backend. All methods are safe for
// concurrent use. A write that returned without error is durable: it
// survives a crash of the process and (for replicated backends) the loss
// of a minority of members.
type Store interface {
	// Get returns the live item under key, or ErrNotFound.
	Get(ctx context.Context, key string) (Item, error)
	// List returns the live items whose key starts with prefix, sorted by
	// key, and the store revision the listing reflects. Watching from
	// revision+1 afterwards misses no change.
	List(ctx context.Context, prefix string) ([]Item, int64, error)
	// Scan reads what List returns without holding it all: the live items
	// under prefix at one store revision, sorted by key, handed to fn a
	// page at a time (a bounded number of items) with that revision, so
	// that a reader of the whole store holds one page at a time. fn is
	// called at least once (with an empty page when there are no items),
	// so the caller learns the revision before it uses any item; it may
	// keep the items. An error fn returns ends the scan and Scan returns
	// it unchanged. fn runs while the snapshot is held and must not use
	// the store. A backend that drops old revisions (etcd's compaction)
	// may end a long scan with an error.
	Scan(ctx context.Context, prefix string, fn ScanFunc) error
	// Create stores item only if no live item exists under its key
	// (ErrExists otherwise) and returns it with its new revision.
	Create(ctx context.Context, item Item) (Item, error)
	// Put stores item unconditionally and returns it with its new revision.
	Put(ctx context.Context, item Item) (Item, error)
	// CompareAndSwap replaces the item under item.Key only if its current
	// revision equals expected (ErrConflict otherwise; ErrNotFound if the key
	// is absent).
	CompareAndSwap(ctx context.Context, expected int64, item Item) (Item, error)
	// Update atomically applies fn to the key and stores the result. It
	// returns the stored item; when fn deleted the key, an Item with only
	// Key and the Revision of the deletion (Revision 0 if nothing existed).
	Update(ctx context.Context, key string, fn UpdateFunc) (Item, error)
	// Delete removes the key; ErrNotFound if it is absent.
	Delete(ctx context.Context, key string) error
	// Watch delivers every change under prefix with a revision at or after
	// fromRevision, in order, until ctx is cancelled or the watch is lost.
	Watch(ctx context.Context, prefix string, fromRevision int64) (Watcher, error)
	// Ping reports whether the backend is reachable.
	Ping(ctx context.Context) error
	// Close releases the backend. Outstanding watchers end with ErrClosed.
	Close() error
}

// Watcher is a live change feed.
type Watcher interface {
	// Events delivers changes in revision order. It is closed when the
	// watch ends; Err then says why.
	Events() <-chan Event
	// Err returns nil while the watch runs, then the reason it ended:
	// context.Canceled, ErrCompacted, ErrWatchLost or ErrClosed.
	Err() error
}
