//go:build !linux

package bolt

// dropPages does nothing where madvise is not used.
func dropPages(addr uintptr, n int64) {}
