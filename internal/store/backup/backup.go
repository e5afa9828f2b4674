// Package backup is Gatehouse's store-neutral backup: a point-in-time
// copy of every live item of a store, in a file that restores into
// either backend (bolt or etcd), so a backup of one moves a deployment to
// the other.
//
// # Snapshot
//
// Snapshot reads the whole store with one List of the empty prefix. That
// is a consistent point-in-time read in both backends, at the revision it
// returns: bolt reads the committed file and the overlay of the changes
// only in its write-ahead log under the overlay's lock, so it holds every
// write acknowledged before the call and none half-applied; etcd answers
// a listing at one revision (read in pages, the first linearizable). The items are held in
// memory while the backup is written (the domains hold them in memory
// anyway) so nothing of the store stays pinned while a slow client reads.
//
// # File format (version 1)
//
//	magic      8 bytes  "GHBACKUP"
//	format     1 byte   1
//	header     uint32 length (big endian), then a JSON object (Header)
//	items      per item: 'I', uint32 key length, key,
//	           int64 expiry in Unix nanoseconds (0: none),
//	           uint32 value length, value
//	end        'E', uint64 number of items,
//	           SHA-256 of every byte before it (32 bytes)
//
// Items come sorted by key. A file without its end, or whose checksum or
// count does not match, is refused whole by Read: nothing of it is
// restored.
package backup

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Format is the version of the file format this package writes and reads.
const Format = 1

const magic = "GHBACKUP"

// Tags of the parts after the header.
const (
	tagItem = 'I'
	tagEnd  = 'E'
)

// Bounds on what Read accepts before the checksum is known, so that a
// corrupted length does not make it allocate gigabytes.
const (
	maxHeader = 64 << 10
	maxKey    = 64 << 10
	maxValue  = 64 << 20
)

// ContentType is the media type of a backup on the wire.
const ContentType = "application/vnd.gatehouse.backup"

// Header describes a backup.
type Header struct {
	// Backend is the store the backup was taken from: "bolt" or "etcd".
	Backend string `json:"backend"`
	// Revision is the store revision the snapshot reflects.
	Revision int64 `json:"revision"`
	// Created is when the snapshot was taken.
	Created time.Time `json:"created"`
	// Version is the version of the Gatehouse that took it.
	Version string `json:"version,omitempty"`
	// Items is the number of items.
	Items int `json:"items"`
}

// Errors of Read. Both wrap ErrInvalid.
var (
	// ErrInvalid: the input is not a complete, intact backup.
	ErrInvalid = errors.New("not a valid Gatehouse backup")
	// ErrTruncated: the input ends before the backup does.
	ErrTruncated = fmt.Errorf("%w: the file is truncated (an interrupted backup or copy?)", ErrInvalid)
	// ErrChecksum: the input was changed after it was written.
	ErrChecksum = fmt.Errorf("%w: the checksum does not match (the file is corrupted)", ErrInvalid)
)

// Snapshot reads every live item of st at one revision (see the package
// comment) and returns them, sorted by key, with their header; backend
// and version go into the header.
func Snapshot(ctx context.Context, st store.Store, backend, version string) (Header, []store.Item, error) {
	items, rev, err := st.List(ctx, "")
	if err != nil {
		return Header{}, nil, err
	}
	return Header{Backend: backend, Revision: rev, Created: time.Now().UTC(), Version: version, Items: len(items)}, items, nil
}

// Write writes the backup of items described by h to w. h.Items is set
// from items.
func Write(w io.Writer, h Header, items []store.Item) error {
	h.Items = len(items)
	hdr, err := json.Marshal(h)
	if err != nil {
		return err
	}
	sum := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(w, sum), 64<<10)
	var b []byte
	b = append(b, magic...)
	b = append(b, Format)
	b = binary.BigEndian.AppendUint32(b, uint32(len(hdr)))
	b = append(b, hdr...)
	if _, err := bw.Write(b); err != nil {
		return err
	}
	for _, it := range items {
		b = append(b[:0], tagItem)
		b = binary.BigEndian.AppendUint32(b, uint32(len(it.Key)))
		b = append(b, it.Key...)
		b = binary.BigEndian.AppendUint64(b, uint64(expiryNanos(it.Expires)))
		b = binary.BigEndian.AppendUint32(b, uint32(len(it.Value)))
		if _, err := bw.Write(b); err != nil {
			return err
		}
		if _, err := bw.Write(it.Value); err != nil {
			return err
		}
	}
	b = append(b[:0], tagEnd)
	b = binary.BigEndian.AppendUint64(b, uint64(len(items)))
	if _, err := bw.Write(b); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err = w.Write(sum.Sum(nil))
	return err
}

// expiryNanos is an expiry in Unix nanoseconds, 0 for none; an expiry at
// or before the epoch is 1 (long expired).
func expiryNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(t.UnixNano(), 1)
}

// reader reads a backup, hashing what it reads.
type reader struct {
	r   *bufio.Reader
	sum hash.Hash
	buf [8]byte
}

func (r *reader) full(b []byte) error {
	if _, err := io.ReadFull(r.r, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return ErrTruncated
		}
		return err
	}
	r.sum.Write(b)
	return nil
}

func (r *reader) byte() (byte, error) {
	err := r.full(r.buf[:1])
	return r.buf[0], err
}

func (r *reader) uint32() (uint32, error) {
	err := r.full(r.buf[:4])
	return binary.BigEndian.Uint32(r.buf[:4]), err
}

func (r *reader) uint64() (uint64, error) {
	err := r.full(r.buf[:8])
	return binary.BigEndian.Uint64(r.buf[:8]), err
}

// bytes reads a length and that many bytes, refusing a length over limit.
func (r *reader) bytes(what string, limit uint32) ([]byte, error) {
	n, err := r.uint32()
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("%w: %s of %d bytes (the file is corrupted)", ErrInvalid, what, n)
	}
	b := make([]byte, n)
	return b, r.full(b)
}

// Read reads a whole backup from r and verifies it: its format, its
// checksum and its item count. It returns the items only when all hold;
// otherwise an error wrapping ErrInvalid (ErrTruncated, ErrChecksum) or
// the error of r.
func Read(r io.Reader) (Header, []store.Item, error) {
	var items []store.Item
	h, err := read(r, func(it store.Item) { items = append(items, it) })
	if err != nil {
		return Header{}, nil, err
	}
	return h, items, nil
}

// Verify reads a whole backup from r and verifies it as Read does,
// without keeping its items.
func Verify(r io.Reader) (Header, error) {
	return read(r, func(store.Item) {})
}

// read reads and verifies a backup, handing each item to fn before the
// checksum is known.
func read(r io.Reader, fn func(store.Item)) (Header, error) {
	rd := &reader{r: bufio.NewReaderSize(r, 64<<10), sum: sha256.New()}
	m := make([]byte, len(magic))
	if err := rd.full(m); err != nil {
		return Header{}, err
	}
	if string(m) != magic {
		return Header{}, fmt.Errorf("%w: it does not start with %q", ErrInvalid, magic)
	}
	format, err := rd.byte()
	if err != nil {
		return Header{}, err
	}
	if format != Format {
		return Header{}, fmt.Errorf("%w: format %d; this Gatehouse reads format %d (restore with the version that wrote it, or a newer one)", ErrInvalid, format, Format)
	}
	raw, err := rd.bytes("a header", maxHeader)
	if err != nil {
		return Header{}, err
	}
	var h Header
	if err := json.Unmarshal(raw, &h); err != nil {
		return Header{}, fmt.Errorf("%w: header: %v", ErrInvalid, err)
	}
	n := 0
	for {
		tag, err := rd.byte()
		if err != nil {
			return Header{}, err
		}
		if tag == tagEnd {
			break
		}
		if tag != tagItem {
			return Header{}, fmt.Errorf("%w: unknown record tag %#x (the file is corrupted)", ErrInvalid, tag)
		}
		it, err := rd.item()
		if err != nil {
			return Header{}, err
		}
		fn(it)
		n++
	}
	count, err := rd.uint64()
	if err != nil {
		return Header{}, err
	}
	want := rd.sum.Sum(nil)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(rd.r, got); err != nil {
		return Header{}, ErrTruncated
	}
	if string(got) != string(want) {
		return Header{}, ErrChecksum
	}
	if _, err := rd.r.ReadByte(); err == nil {
		return Header{}, fmt.Errorf("%w: data after its end (the file is corrupted)", ErrInvalid)
	}
	if count != uint64(n) || h.Items != n {
		return Header{}, fmt.Errorf("%w: %d items, the file says %d", ErrInvalid, n, count)
	}
	return h, nil
}

// item reads one item after its tag.
func (r *reader) item() (store.Item, error) {
	key, err := r.bytes("a key", maxKey)
	if err != nil {
		return store.Item{}, err
	}
	exp, err := r.uint64()
	if err != nil {
		return store.Item{}, err
	}
	val, err := r.bytes("a value", maxValue)
	if err != nil {
		return store.Item{}, err
	}
	it := store.Item{Key: string(key), Value: val}
	if exp != 0 {
		it.Expires = time.Unix(0, int64(exp))
	}
	return it, nil
}

// ErrNotEmpty: Restore found items in the target store.
var ErrNotEmpty = errors.New("the target store is not empty")

// Result says what Restore wrote.
type Result struct {
	// Restored is the number of items written.
	Restored int
	// Expired is the number of items skipped because they expired
	// between the backup and the restore.
	Expired int
	// Replaced is the number of items deleted from the target first.
	Replaced int
}

// workers is how many writes Restore keeps in flight: the backends
// commit concurrent writes together (bolt's group commit, etcd's raft
// batching).
const workers = 16

// Restore writes items into st. The store must be empty (ErrNotEmpty
// otherwise) unless replace, which deletes every item in it first. Items
// that have expired at now are skipped. Revisions are the target's own:
// the restored items get new ones.
func Restore(ctx context.Context, st store.Store, items []store.Item, replace bool, now time.Time) (Result, error) {
	var res Result
	existing, _, err := st.List(ctx, "")
	if err != nil {
		return res, err
	}
	if len(existing) > 0 && !replace {
		return res, fmt.Errorf("%w: it holds %d items", ErrNotEmpty, len(existing))
	}
	err = parallel(ctx, existing, func(ctx context.Context, it store.Item) error {
		if err := st.Delete(ctx, it.Key); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("delete %q: %w", it.Key, err)
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	res.Replaced = len(existing)
	var live []store.Item
	for _, it := range items {
		if it.Expired(now) {
			res.Expired++
			continue
		}
		live = append(live, it)
	}
	err = parallel(ctx, live, func(ctx context.Context, it store.Item) error {
		if _, err := st.Put(ctx, store.Item{Key: it.Key, Value: it.Value, Expires: it.Expires}); err != nil {
			return fmt.Errorf("write %q: %w", it.Key, err)
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	res.Restored = len(live)
	return res, nil
}

// parallel runs fn on every item with up to workers at a time and
// returns the first error; after one, no further item is started.
func parallel(ctx context.Context, items []store.Item, fn func(context.Context, store.Item) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan store.Item)
	var wg sync.WaitGroup
	for range min(workers, len(items)) {
		wg.Go(func() {
			for it := range next {
				if err := fn(ctx, it); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for _, it := range items {
		select {
		case next <- it:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}
