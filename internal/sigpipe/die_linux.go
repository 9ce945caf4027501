package sigpipe

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// die restores SIGPIPE's default action (the Go runtime catches it) and
// raises it on this thread, as the runtime does for a write to a broken
// standard output.
func die() {
	runtime.LockOSThread()
	var set unix.Sigset_t
	bits := uint(unsafe.Sizeof(set.Val[0])) * 8
	set.Val[uint(unix.SIGPIPE-1)/bits] |= 1 << (uint(unix.SIGPIPE-1) % bits)
	_ = unix.PthreadSigmask(unix.SIG_UNBLOCK, &set, nil)
	// A zeroed kernel struct sigaction is SIG_DFL with no flags and an
	// empty mask, whatever the architecture's layout.
	var act [8]uint64
	_, _, _ = unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(unix.SIGPIPE), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
	_ = unix.Tgkill(unix.Getpid(), unix.Gettid(), unix.SIGPIPE)
}
