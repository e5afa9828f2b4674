package bolt

import "syscall"

// dropPages drops n bytes of a read-only file map at addr from the
// process's resident memory (madvise MADV_DONTNEED).
func dropPages(addr uintptr, n int64) {
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, addr, uintptr(n), syscall.MADV_DONTNEED)
}
