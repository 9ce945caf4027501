// Package sigpipe lets lcat and ltee end as their own write to a broken
// pipe would have ended them, when reshd did the writing in their place.
//
// A Go program whose write to standard output or standard error (file
// descriptors 1 and 2) fails with EPIPE is killed by SIGPIPE, unless
// SIGPIPE is ignored; a write to any other descriptor just returns the
// error (os/signal documents this). Wanted and Die reproduce that.
package sigpipe

import (
	"os"
	"os/signal"
	"syscall"
)

// Wanted reports whether a broken pipe while writing f kills the program:
// f is descriptor 1 or 2 and SIGPIPE is not ignored.
func Wanted(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	stdio := false
	if rc.Control(func(fd uintptr) { stdio = fd == 1 || fd == 2 }) != nil {
		return false
	}
	return stdio && !signal.Ignored(syscall.SIGPIPE)
}

// Die kills the program with SIGPIPE, as a write to a broken pipe on its
// standard output would; it does not return.
func Die() {
	die()
	// Where the signal could not be raised: the status a shell shows for
	// a death by SIGPIPE.
	os.Exit(128 + int(syscall.SIGPIPE))
}
