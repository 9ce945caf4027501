package server

import (
	"log/slog"
	"syscall"
)

// RaiseFileLimit raises the soft limit on open files (RLIMIT_NOFILE) to the
// hard limit, so that a flood of connections meets the admission limits of
// the connection layer before it meets EMFILE. The Go runtime already
// raises it at start, to one below the hard limit, and restores the
// original soft limit in the processes it starts; a setrlimit of ours
// would stop that restoring, so RaiseFileLimit calls it only if the runtime
// did not raise the limit, and sessions' commands keep the soft limit
// reshd was started with.
func RaiseFileLimit(log *slog.Logger) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("reshd: cannot read the open files limit", "err", err)
		return
	}
	if lim.Cur < lim.Max-1 {
		raised := syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			log.Warn("reshd: cannot raise the open files limit", "soft", lim.Cur, "hard", lim.Max, "err", err)
			return
		}
		log.Info("reshd: raised the open files limit", "from", lim.Cur, "to", lim.Max)
	}
}
