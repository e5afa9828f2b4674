package bolt

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store"
)

func puts(from, to int64) []store.Event {
	var evs []store.Event
	for r := from; r <= to; r++ {
		evs = append(evs, store.Event{Type: store.EventPut, Item: store.Item{Key: fmt.Sprint("k", r%10), Value: []byte("value"), Revision: r}})
	}
	return evs
}

// TestLogStartsAgain checks that the records left behind when the log
// starts again from its beginning are not read back, even when a new
// record ends exactly where an old one began.
func TestLogStartsAgain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	l, err := openWAL(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	for _, evs := range [][]store.Event{puts(1, 2), puts(3, 4), puts(5, 6)} {
		if err := l.append(evs); err != nil {
			t.Fatal(err)
		}
	}
	l.reset()
	if err := l.append(puts(7, 8)); err != nil { // same length as the first old record
		t.Fatal(err)
	}
	end := l.size
	var revs []int64
	got, err := l.scan(func(ev store.Event) error {
		revs = append(revs, ev.Item.Revision)
		return nil
	})
	if err != nil || got != end || fmt.Sprint(revs) != "[7 8]" {
		t.Fatalf("scan = end %d, revisions %v, %v; want end %d, [7 8]", got, revs, err, end)
	}
	reopened, err := openWAL(path)
	if err != nil {
		t.Fatal(err)
	}
	defer reopened.close()
	if reopened.size != end {
		t.Fatalf("reopened log ends at %d, want %d", reopened.size, end)
	}
}
