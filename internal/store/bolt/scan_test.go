package bolt_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/bolt"
)

// TestScanDoesNotHoldUpGrowth holds a scan open while a writer writes
// enough for the flushes to grow the file many times over: every write
// must be acknowledged while the scan is held, and the scan sees none of
// them.
func TestScanDoesNotHoldUpGrowth(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s := openStore(t, path, bolt.Options{FlushInterval: time.Millisecond})
	ctx := t.Context()
	for i := range 10 {
		if _, err := s.Put(ctx, store.Item{Key: fmt.Sprintf("old/%d", i), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	start, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// More than bbolt's 16 MiB growth step, so that the file must grow
	// whether or not the first flush already grew it before the scan.
	const writes, size = 1600, 16 << 10
	value := bytes.Repeat([]byte("x"), size)
	wrote := make(chan error, 1)
	var seen int
	err = s.Scan(ctx, "", func(_ int64, page []store.Item) error {
		seen += len(page)
		if seen > len(page) {
			return nil
		}
		go func() {
			for i := range writes {
				if _, err := s.Put(ctx, store.Item{Key: fmt.Sprintf("new/%04d", i), Value: value}); err != nil {
					wrote <- err
					return
				}
			}
			wrote <- nil
		}()
		select {
		case err := <-wrote:
			return err
		case <-time.After(time.Minute):
			return fmt.Errorf("the writes did not finish while the scan was held")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != 10 {
		t.Errorf("the scan saw %d items, want the 10 written before it", seen)
	}
	end, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if end.Size() < start.Size()+writes*size/2 {
		t.Errorf("the file grew from %d to %d bytes only: the flushes were held up", start.Size(), end.Size())
	}
}
