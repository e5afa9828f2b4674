// Package backup is Gatehouse's store-neutral backup: a point-in-time
// copy of every live item of a store, in a file that restores into
// either backend (bolt or etcd), so a backup of one moves a deployment to
// the other.
//
// # Snapshot
//
// Snapshot reads the whole store with one Scan of the empty prefix and
// writes each page of items as it comes, so a backup holds a page of
// items at a time however large the store. A Scan is a consistent
// point-in-time read in both backends, at the revision it hands out:
// bolt reads one bbolt read transaction and the overlay of the changes
// only in its write-ahead log taken with it, so it holds every write
// acknowledged before the call and none half-applied; etcd reads pages
// at one revision, the first with a linearizable read. The snapshot stays
// open while a slow client reads: bolt keeps the pages of the snapshot
// from being reused until then (the file grows by what is written
// meanwhile); etcd's compaction of its revision ends the backup.
//
// # File format (version 2)
//
//	magic      8 bytes  "GHBACKUP"
//	format     1 byte   2
//	header     uint32 length (big endian), then a JSON object (Header)
//	items      per item: 'I', uint32 key length, key,
//	           int64 expiry in Unix nanoseconds (0: none),
//	           uint32 value length, value
//	end        'E', uint64 number of items,
//	           SHA-256 of every byte before it (32 bytes)
//
// Format 1 is the same but for its header, which also holds the number
// of items ("items"), known before the items were written; Read reads
// both.
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

// Format is the version of the file format this package writes. Read
// also reads format 1.
const Format = 2

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
	// Items is the number of items. Read sets it from the end of the
	// file; format 1 also wrote it into the header, before the items.
	Items int `json:"items,omitempty"`
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

// Snapshot writes a backup of every live item of st, read at one
// revision (see the package comment), as it reads them. It calls open
// once, with the header, when the store answered with the revision and
// before any item is read past the first page, and writes the backup to
// the writer open returns. A store error before then is returned without
// open being called; an error after it leaves the backup without its
// end. It returns the header with the number of items; backend and
// version go into the header.
func Snapshot(ctx context.Context, st store.Store, backend, version string, open func(Header) (io.Writer, error)) (Header, error) {
	h := Header{Backend: backend, Created: time.Now().UTC(), Version: version}
	var bw *Writer
	err := st.Scan(ctx, "", func(rev int64, page []store.Item) error {
		if bw == nil {
			h.Revision = rev
			w, err := open(h)
			if err != nil {
				return err
			}
			if bw, err = NewWriter(w, h); err != nil {
				return err
			}
		}
		for _, it := range page {
			if err := bw.Add(it); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return h, err
	}
	h.Items = bw.n
	return h, bw.Close()
}

// Writer writes a backup item by item. It holds one item at a time
// (besides a buffer), so a backup of any size takes little memory.
type Writer struct {
	out     io.Writer
	buf     *bufio.Writer // to out and sum
	sum     hash.Hash
	n       int    // items written
	scratch []byte // reused for each item's fields
}

// NewWriter writes the start of a backup described by h to w and returns
// the Writer of its items. h.Items is not written: the end of the backup
// holds the count.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	h.Items = 0
	hdr, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	sum := sha256.New()
	bw := &Writer{out: w, buf: bufio.NewWriterSize(io.MultiWriter(w, sum), 64<<10), sum: sum}
	b := append([]byte(magic), Format)
	b = binary.BigEndian.AppendUint32(b, uint32(len(hdr)))
	b = append(b, hdr...)
	if _, err := bw.buf.Write(b); err != nil {
		return nil, err
	}
	return bw, nil
}

// Add writes one item. Items must come sorted by key.
func (w *Writer) Add(it store.Item) error {
	b := append(w.scratch[:0], tagItem)
	b = binary.BigEndian.AppendUint32(b, uint32(len(it.Key)))
	b = append(b, it.Key...)
	b = binary.BigEndian.AppendUint64(b, uint64(expiryNanos(it.Expires)))
	b = binary.BigEndian.AppendUint32(b, uint32(len(it.Value)))
	w.scratch = b
	if _, err := w.buf.Write(b); err != nil {
		return err
	}
	if _, err := w.buf.Write(it.Value); err != nil {
		return err
	}
	w.n++
	return nil
}

// Close writes the end of the backup: the number of items and the
// checksum. It does not close the underlying writer.
func (w *Writer) Close() error {
	b := append(w.scratch[:0], tagEnd)
	b = binary.BigEndian.AppendUint64(b, uint64(w.n))
	if _, err := w.buf.Write(b); err != nil {
		return err
	}
	if err := w.buf.Flush(); err != nil {
		return err
	}
	_, err := w.out.Write(w.sum.Sum(nil))
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
	if format != 1 && format != Format {
		return Header{}, fmt.Errorf("%w: format %d; this Gatehouse reads formats 1 to %d (restore with the version that wrote it, or a newer one)", ErrInvalid, format, Format)
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
	if count != uint64(n) || format == 1 && h.Items != n {
		return Header{}, fmt.Errorf("%w: %d items, the file says %d", ErrInvalid, n, count)
	}
	h.Items = n
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
