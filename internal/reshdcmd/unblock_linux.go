package reshdcmd

import (
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// unblockedEnv marks the reshd that unblockSignals executed, so that it
// never does it twice.
const unblockedEnv = "RESHD_SIGNALS_UNBLOCKED"

// unblockSignals executes reshd again with no signal blocked if it started
// with some blocked. A Go program's children start with the signal mask
// the program started with (the runtime restores it between fork and
// exec), and the sessions' commands must start with none blocked. Signals
// the runtime catches come back to their default action in the new
// program; ignored ones stay ignored.
func unblockSignals() error {
	if os.Getenv(unblockedEnv) != "" {
		return os.Unsetenv(unblockedEnv)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old unix.Sigset_t
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, nil, &old); err != nil {
		return fmt.Errorf("signal mask: %w", err)
	}
	if old == (unix.Sigset_t{}) {
		return nil
	}
	var none unix.Sigset_t
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &none, nil); err != nil {
		return fmt.Errorf("signal mask: %w", err)
	}
	err := syscall.Exec(selfExe(), os.Args, append(os.Environ(), unblockedEnv+"=1"))
	// Still here: keep going with the signals blocked.
	_ = unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	return fmt.Errorf("started with signals blocked, which the sessions would inherit, and cannot execute itself again: %w", err)
}
