package bolt

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/gatehouse/gatehouse/internal/store"
)

// BenchmarkDurableWrite compares, at the same durability (a write returns
// once it is on disk), the store's write path, a write-ahead log with
// group commit (store), with writes through bbolt's own DB.Batch, which
// commits the bbolt file, syncing it, before its callers return
// (batch=10ms: bbolt's default MaxBatchDelay; batch=500us: the store's
// BatchDelay). Both run the same operation, with the same code, on copies
// of one file of 50 000 session-shaped items, from 1, 16, 64 and 256
// concurrent writers:
//
//   - session: Update of a random existing ccmessaging session (a 38-byte
//     key, a 198-byte record, an expiry a day ahead), as a renewal does;
//   - audit: Put of a new audit item (a time-ordered 31-byte key, one
//     186-byte JSON record, an expiry 30 days ahead), as the audit log
//     does.
//
// The batch variant runs each write's operation through apply, as the
// committer does: the same lookup, record encoding, expiry index update,
// revision counter and change record, on a bbolt file opened with the
// store's options; its changes are published to a change feed (a hub,
// without watchers, as in the store) once the bbolt commit succeeded.
// It keeps no write-ahead log and no overlay, which it does not need:
// every commit is in the bbolt file. It has no sweeper; the store's finds
// nothing to expire here.
//
// Metrics: writes/s (wall time), the p50 and p99 latency of one write,
// and for the batch variant the writes per bbolt commit. Set TMPDIR to
// choose the file system (the files go under the benchmark's TempDir).
func BenchmarkDurableWrite(b *testing.B) {
	seed := seedSessions(b)
	ops := []struct {
		name string
		op   func(r *rand.Rand) func(w *writeTx) (store.Item, error)
	}{
		{"session", sessionRenewal},
		{"audit", auditWrite},
	}
	impls := []struct {
		name string
		open func(b *testing.B, path string) (write writeFunc, report func())
	}{
		{"store", openStoreWriter},
		{"batch=10ms", batchWriter(0)},
		{"batch=500us", batchWriter(500 * time.Microsecond)},
	}
	for _, op := range ops {
		for _, impl := range impls {
			for _, writers := range []int{1, 16, 64, 256} {
				b.Run(fmt.Sprintf("op=%s/impl=%s/writers=%d", op.name, impl.name, writers), func(b *testing.B) {
					path := filepath.Join(b.TempDir(), "gatehouse.db")
					copyFile(b, seed, path)
					write, report := impl.open(b, path)
					runWriters(b, writers, func(r *rand.Rand) error { return write(op.op(r)) })
					report()
				})
			}
		}
	}
}

// Sizes of the benchmark's items, as measured on the real records.
const (
	sessionValueLen = 198 // a session record in its binary form
	auditValueLen   = 186 // one audit record as a JSON array
)

// sessionCount is how many sessions the benchmark's store holds.
const sessionCount = 50_000

func sessionKeyOf(i int) string { return fmt.Sprintf("ccsessions/channel-0001/user-%09d", i) }

// writeFunc runs one write operation durably.
type writeFunc func(op func(w *writeTx) (store.Item, error)) error

// seedSessions writes sessionCount session items, as the store would, into
// a new bbolt file and returns its path.
func seedSessions(b *testing.B) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "seed.db")
	s, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	exp := time.Now().Add(24 * time.Hour)
	val := make([]byte, sessionValueLen)
	err = db.Update(func(tx *bbolt.Tx) error {
		w, err := newWriteTx(tx, time.Now())
		if err != nil {
			return err
		}
		for i := range sessionCount {
			binary.BigEndian.PutUint64(val, uint64(i))
			if _, err := w.set(store.Item{Key: sessionKeyOf(i), Value: val, Expires: exp}); err != nil {
				return err
			}
		}
		return w.meta.Put(revisionKey, encodeRevision(w.revision))
	})
	if err != nil {
		b.Fatal(err)
	}
	return path
}

// sessionRenewal updates a random session: a new record of the same size
// and a later expiry.
func sessionRenewal(r *rand.Rand) func(w *writeTx) (store.Item, error) {
	val := make([]byte, sessionValueLen)
	binary.BigEndian.PutUint64(val, r.Uint64())
	exp := time.Now().Add(24 * time.Hour)
	return updateOp(sessionKeyOf(r.IntN(sessionCount)), func(cur *store.Item) (*store.Item, error) {
		if cur == nil {
			return nil, store.ErrNotFound
		}
		return &store.Item{Value: val, Expires: exp}, nil
	})
}

// auditWrite puts a new audit item, keyed by time.
func auditWrite(r *rand.Rand) func(w *writeTx) (store.Item, error) {
	now := time.Now()
	val := make([]byte, auditValueLen)
	binary.BigEndian.PutUint64(val, r.Uint64())
	item := store.Item{
		Key:   fmt.Sprintf("audit/%016x-%08x", now.UnixNano(), r.Uint32()),
		Value: val, Expires: now.Add(30 * 24 * time.Hour),
	}
	return func(w *writeTx) (store.Item, error) { return w.set(item) }
}

// openStoreWriter opens the store at path; its writes go through the
// committer, as those of Put and Update do.
func openStoreWriter(b *testing.B, path string) (writeFunc, func()) {
	s, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := s.Close(); err != nil {
			b.Error(err)
		}
	})
	ctx := context.Background()
	write := func(op func(w *writeTx) (store.Item, error)) error {
		_, err := s.writeItem(ctx, op)
		return err
	}
	return write, func() {}
}

// batchWriter opens the bbolt file at path as the store does, and writes
// through DB.Batch with the given MaxBatchDelay (0: bbolt's default).
func batchWriter(delay time.Duration) func(b *testing.B, path string) (writeFunc, func()) {
	return func(b *testing.B, path string) (writeFunc, func()) {
		db, err := bbolt.Open(path, 0o600, &bbolt.Options{NoFreelistSync: true, FreelistType: bbolt.FreelistMapType})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			if err := db.Close(); err != nil {
				b.Error(err)
			}
		})
		if delay > 0 {
			db.MaxBatchDelay = delay
		}
		var rev int64
		err = db.View(func(tx *bbolt.Tx) error {
			rev, err = decodeRevision(tx.Bucket(metaBucket).Get(revisionKey))
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		h := newHub(rev, 4096, 1024)
		var (
			writes, commits atomic.Int64
			lastTx          *bbolt.Tx // set inside write transactions, which bbolt serialises
		)
		report := func() {
			if n := commits.Load(); n > 0 {
				b.ReportMetric(float64(writes.Load())/float64(n), "writes/commit")
			}
		}
		write := func(op func(w *writeTx) (store.Item, error)) error {
			return db.Batch(func(tx *bbolt.Tx) error {
				p := &pending{op: func(w *writeTx) error {
					_, err := op(w)
					return err
				}}
				if err := apply(tx, p, time.Now()); err != nil {
					return err
				}
				if p.opErr != nil {
					return p.opErr
				}
				if tx != lastTx {
					lastTx = tx
					tx.OnCommit(func() { commits.Add(1) })
				}
				tx.OnCommit(func() {
					writes.Add(1)
					h.publish(p.events)
				})
				return nil
			})
		}
		return write, report
	}
}

// runWriters calls write b.N times from n goroutines, each with its own
// random source, and reports the throughput and the latency percentiles.
func runWriters(b *testing.B, n int, write func(r *rand.Rand) error) {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		lats  = make([][]time.Duration, n)
		total = int64(b.N)
	)
	b.ResetTimer()
	start := time.Now()
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), uint64(time.Now().UnixNano())))
			for next.Add(1) <= total {
				t := time.Now()
				if err := write(r); err != nil {
					b.Error(err)
					return
				}
				lats[g] = append(lats[g], time.Since(t))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lats...)
	slices.Sort(all)
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "writes/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-us")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-us")
}

// copyFile copies src to dst and syncs the copy, so that its writeback
// does not fall into the measurement.
func copyFile(b *testing.B, src, dst string) {
	b.Helper()
	in, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
	if err := out.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
}
