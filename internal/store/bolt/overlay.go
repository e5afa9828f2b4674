package bolt

import (
	"slices"
	"strings"
	"sync"

	"github.com/gatehouse/gatehouse/internal/store"
)

// overlay holds, for readers, the changes that are in the write-ahead log
// but not yet in the committed bbolt file: the last event of each key
// changed since the last flush. Reads look here first. The committer adds
// a commit's events before answering its writers and clears the overlay
// once a flush committed the bbolt file.
type overlay struct {
	mu       sync.RWMutex
	last     map[string]store.Event
	revision int64 // of the last event held; 0 when empty
}

func newOverlay() *overlay { return &overlay{last: map[string]store.Event{}} }

// add records the events of one commit, in revision order.
func (o *overlay) add(events []store.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, ev := range events {
		o.last[ev.Item.Key] = ev
	}
	o.revision = events[len(events)-1].Item.Revision
}

// clear forgets every change: the bbolt file holds them.
func (o *overlay) clear() {
	o.mu.Lock()
	defer o.mu.Unlock()
	clear(o.last)
	o.revision = 0
}

// under returns the changes to keys under prefix, sorted by key. The
// caller holds o.mu.
func (o *overlay) under(prefix string) []store.Event {
	var evs []store.Event
	for k, ev := range o.last {
		if strings.HasPrefix(k, prefix) {
			evs = append(evs, ev)
		}
	}
	slices.SortFunc(evs, func(a, b store.Event) int { return strings.Compare(a.Item.Key, b.Item.Key) })
	return evs
}
