package server

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// handOver turns a descriptor a tool passed into a file reshd reads (its
// stdin) or writes (its stdout), named name. It closes fd, and declines
// what reshd leaves to the tool:
//
//   - a pipe, a FIFO, or a terminal to write is opened again through
//     /proc/self/fd, non-blocking, so that reshd can stop a read or write in
//     progress when the tool goes away without making the file description
//     it shares with the tool and its neighbours non-blocking under them;
//   - a regular file is used as it is: it shares the tool's offset, as it
//     must for `{ lcat a; echo b; } > f`, and never blocks for long;
//   - any other character device to write (/dev/null) is used as it is;
//   - reshd declines a terminal to read (it is outside the terminal's job
//     control: a background ltee must stop on SIGTTIN, not take the
//     foreground's input), another character device to read (it may block
//     for ever), and a socket or anything else.
func handOver(fd int, write bool, name string) (*os.File, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	mode := unix.O_RDONLY
	if write {
		mode = unix.O_WRONLY
	}
	reopen := false
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFIFO:
		reopen = true
	case unix.S_IFREG:
	case unix.S_IFCHR:
		_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		tty := err == nil
		if !write {
			_ = unix.Close(fd)
			if tty {
				return nil, errors.New("a terminal to read")
			}
			return nil, errors.New("a character device to read")
		}
		reopen = tty
	default:
		_ = unix.Close(fd)
		return nil, fmt.Errorf("file type %#o", st.Mode&unix.S_IFMT)
	}
	if reopen {
		// Only as the tool could: a pipe's read end stays read-only.
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err == nil && fl&unix.O_ACCMODE != mode && fl&unix.O_ACCMODE != unix.O_RDWR {
			err = errors.New("not open for that")
		}
		if err != nil {
			_ = unix.Close(fd)
			return nil, err
		}
		nfd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", fd), mode|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		_ = unix.Close(fd)
		if err != nil {
			return nil, fmt.Errorf("opening it again: %w", err)
		}
		fd = nfd
	}
	// Never descriptor 1 or 2 (were reshd's own closed): the os package
	// kills the process on a broken pipe there.
	if fd <= 2 {
		nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
		_ = unix.Close(fd)
		if err != nil {
			return nil, err
		}
		fd = nfd
	}
	return os.NewFile(uintptr(fd), name), nil
}
