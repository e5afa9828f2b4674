//go:build !linux

package bolt

import "os"

// fdatasync flushes f to disk.
func fdatasync(f *os.File) error { return f.Sync() }
