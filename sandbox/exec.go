package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Command is one command to run in a Sandbox.
type Command struct {
	// Argv is the command, looked up in the sandbox's PATH when it has no
	// slash.
	Argv []string
	// Env is added to the sandbox's environment for this command, each
	// entry NAME=value with a shell variable's name.
	Env []string
	// Stdin, when not nil, is copied to the sandbox's standard input,
	// which is closed at its end: one command of a sandbox may have it
	// (ErrStdinTaken). Without it the command reads /dev/null. The copy
	// ends when Stdin's Read returns once the sandbox is gone: Exec does
	// not wait for it.
	Stdin io.Reader
	// Stdout and Stderr receive the command's output, up to Limits.Output
	// bytes each; nil discards it (it is still counted).
	Stdout, Stderr io.Writer
	// Limits bound the command; zero fields take the defaults.
	Limits Limits
}

// More errors for misuse of Exec.
var (
	// ErrStdinTaken: a second command of one sandbox was given a Stdin.
	ErrStdinTaken = errors.New("sandbox: the sandbox's stdin was given to an earlier command")
	// ErrBadArg: an argument or an environment entry holds a NUL byte.
	ErrBadArg = errors.New("sandbox: arguments and environment entries cannot hold NUL bytes")
)

// envName is a name the sandbox's shell can export.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Exec runs c in the sandbox and returns how it ended, once it has and all
// the output it wrote has been passed on. It sets the cgroup's limits to
// c's first (so that a compile and the program it makes can have their
// own), and the wall time, CPU time and output limits count from here. At
// a limit, or when ctx ends, the whole sandbox is killed: later commands
// find it ended (a SandboxError). The error is non-nil for misuse
// (ErrNoCommand, ErrBadEnv, ErrBadArg, ErrStdinTaken) and when ctx ended
// first (ctx.Err(), with the Result filled in).
func (sb *Sandbox) Exec(ctx context.Context, c Command) (Result, error) {
	if len(c.Argv) == 0 {
		return Result{}, ErrNoCommand
	}
	for _, e := range c.Env {
		k, _, ok := strings.Cut(e, "=")
		if !ok || !envName.MatchString(k) {
			return Result{}, ErrBadEnv
		}
	}
	for _, a := range append(append([]string(nil), c.Argv...), c.Env...) {
		if strings.IndexByte(a, 0) >= 0 {
			return Result{}, ErrBadArg
		}
	}
	if c.Stdin != nil {
		sb.mu.Lock()
		taken := sb.stdinUsed
		sb.stdinUsed = true
		sb.mu.Unlock()
		if taken {
			return Result{}, ErrStdinTaken
		}
	}
	if !sb.alive() {
		return sandboxError(errors.New(errEnded)), nil
	}
	lim := c.Limits.withDefaults()
	var mark cgMark
	if sb.cg != nil {
		if err := sb.cg.set(lim); err != nil {
			return sandboxError(err), nil
		}
		mark = sb.cg.mark()
	}
	out := &limitWriter{w: c.Stdout, max: lim.Output, name: "stdout", kill: sb.kill}
	errw := &limitWriter{w: c.Stderr, max: lim.Output, name: "stderr", kill: sb.kill}
	sb.outMu.Lock()
	sb.sinks = [2]*limitWriter{out, errw}
	sb.outMu.Unlock()
	if c.Stdin != nil {
		go func() {
			_, _ = io.Copy(sb.stdin, c.Stdin)
			_ = sb.stdin.Close()
		}()
	}

	start := time.Now()
	if _, err := io.WriteString(sb.commands, sb.commandLine(c, lim)+"\n"); err != nil {
		return sandboxError(errors.New(errEnded)), nil
	}
	wall := time.AfterFunc(lim.Wall, func() {
		sb.kill(TimeLimit, fmt.Sprintf("wall time %v exceeded", lim.Wall))
	})
	defer wall.Stop()
	finished := make(chan struct{})
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		sb.watch(ctx, lim, mark, finished)
	}()
	status, children, reported := sb.awaitEnd()
	close(finished)
	watch.Wait()
	wall.Stop()

	res := Result{Wall: time.Since(start), Code: -1}
	stop, reason, detail := sb.stopped()
	if stop || !reported {
		// Everything is being killed: what was written comes to an end.
		sb.killAll()
		<-sb.done
		sb.copiers.Wait()
	} else {
		sb.passed()
	}
	sb.outMu.Lock()
	sb.sinks = [2]*limitWriter{}
	res.Stdout, res.Stderr = out.n, errw.n
	sb.outMu.Unlock()

	if reported {
		res.CPU = children - sb.children
		sb.children = children
	}
	oom := false
	if sb.cg != nil {
		res.PeakMemory = sb.cg.peak()
		if cpu, ok := sb.cg.cpu(); ok {
			res.CPU = cpu - mark.cpu
		}
		oom = sb.cg.oomCount() > mark.oom
	}
	switch {
	case status > 128 && status < 128+65:
		res.Signal = status - 128
	case status >= 0:
		res.Code = status
	}

	switch {
	case stop:
		res.Outcome, res.Detail, res.Code = reason, detail, -1
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
	case oom:
		res.Outcome, res.Code = MemoryLimit, -1
		res.Detail = fmt.Sprintf("memory limit %s exceeded", size(lim.Memory))
	case !reported:
		// The sandbox's shell went without a word: only the job itself
		// (same user, same namespaces) could have killed it.
		res.Outcome, res.Code, res.Signal = Signaled, -1, int(syscall.SIGKILL)
		res.Detail = "the sandbox ended during the command"
	case res.Signal == int(syscall.SIGXCPU) || (res.Signal == int(syscall.SIGKILL) && res.CPU >= lim.CPU):
		res.Outcome, res.Code = TimeLimit, -1
		res.Detail = fmt.Sprintf("cpu time %v exceeded", time.Duration(lim.cpuSeconds())*time.Second)
	case res.Signal != 0:
		res.Outcome = Signaled
	default:
		res.Outcome = Exited
	}
	return res, nil
}

// watch kills the sandbox when ctx ends or, with a cgroup that accounts
// CPU time, when the command's processes together used up lim.CPU, until
// finished is closed.
func (sb *Sandbox) watch(ctx context.Context, lim Limits, mark cgMark, finished <-chan struct{}) {
	var tick <-chan time.Time
	if sb.cg != nil && sb.cg.cpuacct != "" {
		t := time.NewTicker(cpuPoll)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			sb.kill(SandboxError, "canceled: "+ctx.Err().Error())
			return
		case <-finished:
			return
		case <-tick:
			if c, ok := sb.cg.cpu(); ok && c-mark.cpu >= lim.CPU {
				sb.kill(TimeLimit, fmt.Sprintf("cpu time %v exceeded", lim.CPU))
				return
			}
		}
	}
}

// awaitEnd waits for the shell's report of the command's end: its status
// and the children's CPU time so far. reported is false when the sandbox
// ended first.
func (sb *Sandbox) awaitEnd() (status int, children time.Duration, reported bool) {
	for line := range sb.reports {
		n, ok := strings.CutPrefix(line, "end ")
		if !ok {
			continue // not ours to make sense of: see innerScript
		}
		code, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		// times(1): the shell's own line, then its children's.
		var times [2]string
		for i := range times {
			l, ok := <-sb.reports
			if !ok {
				return code, 0, true
			}
			times[i] = l
		}
		return code, childTimes(times[1]), true
	}
	return -1, 0, false
}

// passed waits until everything the command wrote before it ended has
// been passed on: the bytes in the output pipes when its end was reported
// (a process it left behind may write more; those are not waited for).
func (sb *Sandbox) passed() {
	sb.outMu.Lock()
	defer sb.outMu.Unlock()
	var until [2]int64
	for i, f := range sb.outR {
		if f != nil {
			until[i] = sb.read[i] + int64(pending(f))
		}
	}
	for i := range sb.outR {
		for sb.read[i] < until[i] && sb.outR[i] != nil {
			sb.outCond.Wait()
		}
	}
}

// pending is how many bytes wait in the pipe f.
func pending(f *os.File) int {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	_ = rc.Control(func(fd uintptr) {
		n, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ) // FIONREAD
	})
	return n
}

// commandLine is the line sent to innerScript for c: a subshell that
// closes the shell's pipes, reads /dev/null unless c has the stdin,
// exports c.Env, sets lim's rlimits with ulimit and, if they all could be
// set, execs c.Argv. Every word is quoted for sh, newlines as "$NL"
// (innerScript's), so the line is one line whatever the arguments hold.
func (sb *Sandbox) commandLine(c Command, lim Limits) string {
	var b strings.Builder
	b.WriteString("( exec 7>&- 8<&-")
	if c.Stdin == nil {
		b.WriteString(" </dev/null")
	}
	b.WriteString("; ")
	for _, e := range c.Env {
		b.WriteString("export ")
		b.WriteString(shellQuote(e))
		b.WriteString("; ")
	}
	b.WriteString(ulimits(lim.rlimits(sb.cg != nil)))
	b.WriteString(" && exec")
	for _, a := range c.Argv {
		b.WriteByte(' ')
		b.WriteString(shellQuote(a))
	}
	b.WriteString(" )")
	return b.String()
}

// shellQuote quotes s as one sh word on one line: single quotes, a quote
// as '\”, a newline as '"$NL"'.
func shellQuote(s string) string {
	s = strings.ReplaceAll(s, "'", `'\''`)
	s = strings.ReplaceAll(s, "\n", `'"$NL"'`)
	return "'" + s + "'"
}
