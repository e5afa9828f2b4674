package bolt

import (
	"time"

	bbolt "go.etcd.io/bbolt"
)

// releaseAfter is how many items a listing returns beyond which it
// releases the file's pages from the process's memory afterwards (see
// release): loading a prefix of that size at start-up walks most of the
// file.
const releaseAfter = 4096

// releaseEvery is how often at most a flush releases the file's pages (a
// variable for tests).
// Writes read the pages on the path to each key they change, and the
// kernel maps up to 64 KiB around each page read (fault-around): writes to
// keys spread over a large file, such as the last-activity times of many
// sessions, would otherwise map most of the file into the process's
// resident memory within minutes: 1000 sessions' activity writes mapped
// about 180 MB of a 745 MB file within a second. Releasing costs a
// fraction of a millisecond and the faults that map the pages read next
// again.
var releaseEvery = time.Second

// release drops the pages of the bbolt file that reads have mapped into
// the process's resident memory. Opening the file (which rebuilds the
// free list by walking every page) and a start-up listing of a large
// prefix touch most of the file once; its pages would otherwise stay
// counted in the process's resident memory (RssFile) for as long as it
// runs, though it reads few of them again; writes map pages too (see
// releaseEvery). The pages stay in the page
// cache: a later read maps its page again without reading the disk. The
// map is read-only, so this never loses data. It runs in a read
// transaction, during which the file cannot be mapped again.
func release(db *bbolt.DB) {
	_ = db.View(func(tx *bbolt.Tx) error {
		releaseIn(db, tx)
		return nil
	})
}

// releaseIn is release in a read transaction the caller holds: a second
// one, begun while a remap of the file waits for the first to end, would
// wait forever.
func releaseIn(db *bbolt.DB, tx *bbolt.Tx) {
	dropPages(db.Info().Data, tx.Size())
}
