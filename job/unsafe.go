package job

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"resh/sandbox"
)

// drainWait bounds the wait for the output of an unsafe command once its
// process group is killed: a process that left the group may hold it.
const drainWait = time.Second

// runUnsafe runs argv without a sandbox (Spec.Unsafe): in dir, with env
// and reshd's PATH, in a process group of its own, under prlimit(1)'s
// RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_AS and no core files (when prlimit is
// installed; without it, no rlimit at all). Processes are not bounded:
// RLIMIT_NPROC would count every process of reshd's user. The wall timer
// and the output limit kill the process group; so does the command's end,
// so that nothing it backgrounded in its group survives it. A process that
// left the group (setsid) escapes all of this: this mode is for trusted
// programs only. A memory limit is not told apart from the program's own
// failure: it is a RUNTIME_ERROR.
func runUnsafe(ctx context.Context, dir string, argv, env []string, lim sandbox.Limits, stdin *os.File, stdout, stderr io.Writer) (sandbox.Result, error) {
	lim = orDefault(lim, Defaults)
	if p, err := exec.LookPath("prlimit"); err == nil {
		cpu := int64((lim.CPU + time.Second - 1) / time.Second)
		pre := []string{p,
			fmt.Sprintf("--cpu=%d:%d", cpu, cpu+1),
			fmt.Sprintf("--fsize=%d", lim.FileSize),
			fmt.Sprintf("--as=%d", lim.Memory),
			"--core=0", "--"}
		argv = append(pre, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	path := "PATH=" + os.Getenv("PATH")
	cmd.Env = append(append([]string(nil), env...), path)
	if lp, err := lookPath(argv[0], dir); err == nil {
		cmd.Path = lp
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if stdin != nil {
		cmd.Stdin = stdin
	}
	u := &unsafeRun{lim: lim}
	outR, outW, err := os.Pipe()
	if err != nil {
		return fail(err), nil
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		_ = outR.Close()
		_ = outW.Close()
		return fail(err), nil
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	start := time.Now()
	err = cmd.Start()
	_ = outW.Close()
	_ = errW.Close()
	if err != nil {
		_ = outR.Close()
		_ = errR.Close()
		return fail(fmt.Errorf("starting %s: %w", argv[0], err)), nil
	}
	u.pgid = cmd.Process.Pid
	var copies sync.WaitGroup
	var nOut, nErr int64
	for _, c := range []struct {
		r    *os.File
		w    io.Writer
		n    *int64
		name string
	}{{outR, stdout, &nOut, "stdout"}, {errR, stderr, &nErr, "stderr"}} {
		copies.Add(1)
		go func() {
			defer copies.Done()
			*c.n = u.copyOut(c.w, c.r, c.name)
		}()
	}
	wall := time.AfterFunc(lim.Wall, func() { u.kill(sandbox.TimeLimit, fmt.Sprintf("wall time %v exceeded", lim.Wall)) })
	defer wall.Stop()
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			u.kill(sandbox.SandboxError, "canceled: "+ctx.Err().Error())
		case <-done:
		}
	}()
	waitErr := cmd.Wait()
	close(done)
	wall.Stop()
	wallTime := time.Since(start)
	// Whatever it left in its group goes with it.
	u.killGroup()
	drained := make(chan struct{})
	go func() { copies.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(drainWait):
		_ = outR.Close()
		_ = errR.Close()
		<-drained
	}
	_ = outR.Close()
	_ = errR.Close()

	res := sandbox.Result{Wall: wallTime, Stdout: nOut, Stderr: nErr, Code: -1}
	ps := cmd.ProcessState
	res.CPU = ps.UserTime() + ps.SystemTime()
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		res.PeakMemory = ru.Maxrss * 1024
	}
	ws, _ := ps.Sys().(syscall.WaitStatus)
	stop, reason, detail := u.stopped()
	switch {
	case stop:
		res.Outcome, res.Detail = reason, detail
		if ws.Signaled() {
			res.Signal = int(ws.Signal())
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
	case ws.Signaled() && ws.Signal() == syscall.SIGXCPU:
		res.Outcome, res.Signal = sandbox.TimeLimit, int(ws.Signal())
		res.Detail = fmt.Sprintf("cpu time %v exceeded", lim.CPU)
	case ws.Signaled():
		res.Outcome, res.Signal = sandbox.Signaled, int(ws.Signal())
	case waitErr != nil && !ws.Exited():
		return fail(waitErr), nil
	default:
		res.Outcome, res.Code = sandbox.Exited, ws.ExitStatus()
	}
	return res, nil
}

// lookPath finds name for a command run in dir: a relative path with a
// slash (./main) is dir's.
func lookPath(name, dir string) (string, error) {
	for i := 0; i < len(name); i++ {
		if name[i] == '/' {
			if name[0] == '/' {
				return name, nil
			}
			return dir + "/" + name, nil
		}
	}
	return exec.LookPath(name)
}

func fail(err error) sandbox.Result {
	return sandbox.Result{Outcome: sandbox.SandboxError, Code: -1, Detail: "job: " + err.Error()}
}

// unsafeRun is the state of one unsafe command.
type unsafeRun struct {
	lim  sandbox.Limits
	pgid int

	mu     sync.Mutex
	stop   bool
	reason sandbox.Outcome
	detail string
}

// kill ends the command's process group for reason (the first wins).
func (u *unsafeRun) kill(reason sandbox.Outcome, detail string) {
	u.mu.Lock()
	if !u.stop {
		u.stop, u.reason, u.detail = true, reason, detail
	}
	u.mu.Unlock()
	u.killGroup()
}

func (u *unsafeRun) killGroup() { _ = syscall.Kill(-u.pgid, syscall.SIGKILL) }

func (u *unsafeRun) stopped() (bool, sandbox.Outcome, string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.stop, u.reason, u.detail
}

// copyOut copies r to w, up to the output limit, and returns the bytes
// passed on. Beyond the limit it kills the command with OutputLimit; a
// failed write to w kills it too (its output has nowhere to go).
func (u *unsafeRun) copyOut(w io.Writer, r io.Reader, name string) int64 {
	var n int64
	buf := make([]byte, 32<<10)
	for {
		k, err := r.Read(buf)
		if k > 0 {
			p := buf[:k]
			over := int64(k) > u.lim.Output-n
			if over {
				p = p[:u.lim.Output-n]
			}
			if len(p) > 0 && w != nil {
				if _, werr := w.Write(p); werr != nil {
					u.kill(sandbox.SandboxError, fmt.Sprintf("writing %s: %v", name, werr))
					return n
				}
			}
			n += int64(len(p))
			if over {
				u.kill(sandbox.OutputLimit, fmt.Sprintf("%s beyond %d bytes", name, u.lim.Output))
				return n
			}
		}
		if err != nil { // EOF, or closed after drainWait
			return n
		}
	}
}
