package wal_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/bolt/wal"
)

func open(t *testing.T, path string) *wal.Log {
	t.Helper()
	l, err := wal.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func appendAll(t *testing.T, l *wal.Log, records ...[]store.Event) {
	t.Helper()
	for _, evs := range records {
		if err := l.Append(evs); err != nil {
			t.Fatal(err)
		}
	}
}

// puts returns puts of revisions from to to.
func puts(from, to int64) []store.Event {
	var evs []store.Event
	for r := from; r <= to; r++ {
		evs = append(evs, store.Event{Type: store.EventPut, Item: store.Item{Key: fmt.Sprint("k", r%10), Value: []byte("value"), Revision: r}})
	}
	return evs
}

func replay(t *testing.T, l *wal.Log) []store.Event {
	t.Helper()
	var got []store.Event
	if err := l.Replay(func(ev store.Event) error {
		got = append(got, ev)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func equal(a, b store.Event) bool {
	return a.Type == b.Type && a.Item.Key == b.Item.Key && a.Item.Revision == b.Item.Revision &&
		bytes.Equal(a.Item.Value, b.Item.Value) && a.Item.Expires.Equal(b.Item.Expires)
}

func checkEvents(t *testing.T, got, want []store.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("replayed %d events, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !equal(got[i], want[i]) {
			t.Fatalf("event %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func concat(records ...[]store.Event) []store.Event {
	var evs []store.Event
	for _, r := range records {
		evs = append(evs, r...)
	}
	return evs
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// copyWith copies the log at path to a new file with tail appended, as a
// crash would leave it, and returns the copy's path.
func copyWith(t *testing.T, path string, tail []byte) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(dst, append(b, tail...), 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

// record frames payload as the log does.
func record(payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli)))
	return append(b, payload...)
}

// TestAppendedIsReplayed checks that what Append acknowledged is found by
// an Open of the file that never saw the log closed, with every field
// and in the order appended, expiries as ExpiryNanos encodes them.
func TestAppendedIsReplayed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	exp := time.Unix(1_900_000_000, 123)
	records := [][]store.Event{
		{{Type: store.EventPut, Item: store.Item{Key: "a", Value: []byte("1"), Revision: 1}}},
		{
			{Type: store.EventPut, Item: store.Item{Key: "b", Value: bytes.Repeat([]byte{7}, 5000), Revision: 2, Expires: exp}},
			{Type: store.EventPut, Item: store.Item{Key: "c", Revision: 3}},
			{Type: store.EventDelete, Item: store.Item{Key: "a", Revision: 4}},
		},
		{{Type: store.EventPut, Item: store.Item{Key: "d", Value: []byte("x"), Revision: 5, Expires: time.Unix(-5, 0)}}},
	}
	l := open(t, path)
	appendAll(t, l, records...)
	want := concat(records...)
	want[4].Item.Expires = time.Unix(0, 1) // clamped: expiries are positive
	checkEvents(t, replay(t, l), want)

	crashed := open(t, path) // l is still open: nothing was closed or truncated
	if crashed.Size() != l.Size() {
		t.Fatalf("reopened log ends at %d, want %d", crashed.Size(), l.Size())
	}
	checkEvents(t, replay(t, crashed), want)
}

// TestTornTail checks that whatever follows the last whole record, Open
// ends the log there, Replay returns the whole records, and the next
// Append overwrites the tail.
func TestTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	l := open(t, path)
	appendAll(t, l, puts(1, 3), puts(4, 4), puts(5, 9))
	end := l.Size()

	tails := map[string][]byte{
		"clean":         nil,
		"torn header":   {0, 0, 1},
		"torn payload":  {0, 0, 0, 40, 1, 2, 3, 4, 5},
		"bad checksum":  {0, 0, 0, 2, 0, 0, 0, 0, 1, 2},
		"zeroed":        make([]byte, 4096),
		"absurd length": {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0},
		"old revisions": record([]byte{byte(store.EventDelete), 2, 1, 'k'}),
	}
	for name, tail := range tails {
		t.Run(name, func(t *testing.T) {
			p := copyWith(t, path, tail)
			c := open(t, p)
			if c.Size() != end {
				t.Fatalf("log ends at %d, want %d", c.Size(), end)
			}
			checkEvents(t, replay(t, c), puts(1, 9))
			appendAll(t, c, puts(10, 10))
			checkEvents(t, replay(t, open(t, p)), puts(1, 10))
		})
	}
}

// TestCutRecord checks that a last record cut short anywhere, as by a
// crash during its write, is not part of the log.
func TestCutRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	l := open(t, path)
	appendAll(t, l, puts(1, 2))
	start := l.Size()
	appendAll(t, l, puts(3, 5))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for cut := start + 1; cut < l.Size(); cut++ {
		p := filepath.Join(t.TempDir(), "log")
		if err := os.WriteFile(p, b[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		c := open(t, p)
		if c.Size() != start {
			t.Fatalf("cut at %d: log ends at %d, want %d", cut, c.Size(), start)
		}
		checkEvents(t, replay(t, c), puts(1, 2))
	}
}

// TestBadChecksumEndsLog checks that a record failing its checksum ends
// the log, even with whole records after it.
func TestBadChecksumEndsLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	l := open(t, path)
	appendAll(t, l, puts(1, 2))
	second := l.Size()
	appendAll(t, l, puts(3, 4), puts(5, 6))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[second+10] ^= 1 // in the second record's payload
	p := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	c := open(t, p)
	if c.Size() != second {
		t.Fatalf("log ends at %d, want %d", c.Size(), second)
	}
	checkEvents(t, replay(t, c), puts(1, 2))
}

// TestCorruptRecordRefused checks that a record passing its checksum but
// not decoding makes Open fail rather than drop the records after it.
func TestCorruptRecordRefused(t *testing.T) {
	payloads := map[string][]byte{
		"unknown type":   {9, 1, 1, 'k'},
		"key cut short":  {byte(store.EventDelete), 1, 5, 'k'},
		"value missing":  {byte(store.EventPut), 1, 1, 'k', 0},
		"bad revision":   {byte(store.EventDelete), 0x80},
		"trailing bytes": {byte(store.EventDelete), 1, 1, 'k', byte(store.EventPut)},
	}
	for name, payload := range payloads {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "log")
			l := open(t, path)
			appendAll(t, l, puts(1, 2))
			p := copyWith(t, path, record(payload))
			if c, err := wal.Open(p); !errors.Is(err, wal.ErrCorrupt) {
				if err == nil {
					c.Close()
				}
				t.Fatalf("Open = %v, want %v", err, wal.ErrCorrupt)
			}
		})
	}
}

// TestResetReusesBlocks checks that after a Reset the log starts again at
// the beginning of the file, whose size stays as it was, and that the
// records left behind are not read back, whether a new record ends where
// an old one began or inside one.
func TestResetReusesBlocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	l := open(t, path)
	appendAll(t, l, puts(1, 2), puts(3, 4), puts(5, 6))
	size := fileSize(t, path)

	l.Reset()
	if l.Size() != 0 || len(replay(t, l)) != 0 {
		t.Fatalf("after Reset: size %d, %d events; want an empty log", l.Size(), len(replay(t, l)))
	}
	// Stopped here, the log found on disk is the old one: its events
	// are durable elsewhere, and whoever replays skips them.
	checkEvents(t, replay(t, open(t, path)), concat(puts(1, 2), puts(3, 4), puts(5, 6)))

	appendAll(t, l, puts(7, 8)) // as long as the first old record
	checkEvents(t, replay(t, l), puts(7, 8))
	checkEvents(t, replay(t, open(t, path)), puts(7, 8))
	if got := fileSize(t, path); got != size {
		t.Fatalf("file size %d after reuse, want %d", got, size)
	}

	l.Reset()
	appendAll(t, l, puts(9, 9)) // shorter: ends inside the old first record
	checkEvents(t, replay(t, open(t, path)), puts(9, 9))
	if got := fileSize(t, path); got != size {
		t.Fatalf("file size %d after reuse, want %d", got, size)
	}
}

// TestCloseTruncatesEmptyLog checks that Close truncates the file of an
// empty log, and only of an empty one.
func TestCloseTruncatesEmptyLog(t *testing.T) {
	for _, reset := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "log")
		l, err := wal.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		appendAll(t, l, puts(1, 2), nil) // appending no events writes nothing
		size := l.Size()
		if reset {
			l.Reset()
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		want := size
		if reset {
			want = 0
		}
		if got := fileSize(t, path); got != want {
			t.Fatalf("reset %v: file size %d after Close, want %d", reset, got, want)
		}
	}
}

// TestReplayStopsAtError checks that Replay returns the first error of fn.
func TestReplayStopsAtError(t *testing.T) {
	l := open(t, filepath.Join(t.TempDir(), "log"))
	appendAll(t, l, puts(1, 3))
	boom := errors.New("boom")
	n := 0
	err := l.Replay(func(store.Event) error {
		n++
		return boom
	})
	if !errors.Is(err, boom) || n != 1 {
		t.Fatalf("Replay = %v after %d events, want %v after 1", err, n, boom)
	}
}
