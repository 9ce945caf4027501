package server

import (
	"bufio"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

var signalsOnce sync.Once

// defaultSignalsForCommands makes the signals this process inherited as
// ignored reach the commands it starts with their default action. A
// signal ignored at exec stays ignored in the new program, and the Go
// runtime leaves SIGHUP and SIGINT ignored when the program started so
// (nohup, a background job of a script), and the job-control signals
// (TSTP, TTIN, TTOU, CONT) untouched: without this, a command run under a
// reshd started by nohup ignores the hangup. A handler that drops the
// signal keeps this process ignoring it, and exec resets a caught signal
// to its default.
func defaultSignalsForCommands() {
	signalsOnce.Do(func() {
		if sigs := ignoredSignals(); len(sigs) > 0 {
			signal.Notify(make(chan os.Signal, 1), sigs...)
		}
	})
}

// ignoredSignals lists the signals whose action is SIG_IGN in this
// process now, from /proc/self/status (SigIgn, a hexadecimal mask where
// bit n-1 is signal n); without /proc, SIGHUP and SIGINT as the runtime
// reports them.
func ignoredSignals() []os.Signal {
	mask, ok := procSignalMask("SigIgn")
	if !ok {
		var sigs []os.Signal
		for _, s := range []syscall.Signal{syscall.SIGHUP, syscall.SIGINT} {
			if signal.Ignored(s) {
				sigs = append(sigs, s)
			}
		}
		return sigs
	}
	var sigs []os.Signal
	for n := 1; n <= 64; n++ {
		s := syscall.Signal(n)
		if mask&(1<<(n-1)) != 0 && s != syscall.SIGKILL && s != syscall.SIGSTOP {
			sigs = append(sigs, s)
		}
	}
	return sigs
}

// procSignalMask reads one of the signal masks of /proc/self/status
// (SigIgn, SigBlk, ...).
func procSignalMask(field string) (uint64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && k == field {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return n, err == nil
		}
	}
	return 0, false
}
