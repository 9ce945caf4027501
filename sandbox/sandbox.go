// Package sandbox runs one command — a compile or a submitted program — in a
// bubblewrap sandbox with limits, and says how it ended. It is the building
// block of the job runner.
//
// # The sandbox
//
// Each Run starts bwrap with its own user, PID, network, IPC, UTS (and,
// where possible, cgroup) namespaces: the job sees no network but an empty
// loopback, no process but its own, and runs as uid/gid 65534 (nobody)
// with no capabilities and no way to make further user namespaces. The
// system directories (/usr, /bin, /lib...) are bound read-only, and of /etc
// only the loader cache, the alternatives, the time zone, the JDK's
// configuration and a minimal passwd and group made up for the sandbox.
// /tmp is a fresh tmpfs, /proc and /dev are the sandbox's own, and /work is
// Spec.Dir, read-write, the current directory. Nothing else of the host is
// there: not reshd's home, RESH_HOME, other jobs' directories nor /etc/shadow.
// The environment is cleared and set to Spec.Env (a minimal default). The
// job has its own session, so it cannot push input into a terminal.
//
// When reshd runs as root, the job's first process drops to nobody before
// it becomes bwrap (see sysProcAttr), and Spec.Dir is handed to nobody.
//
// # Limits
//
// See Limits. Memory and processes are bounded by a cgroup of the job's own
// when one can be made (cgroup v1 memory and pids hierarchies, or a
// delegated cgroup v2 subtree: in practice when reshd is root or systemd
// delegated it a subtree); this also counts the tmpfs /tmp, and tells a
// memory limit apart from a program's own failure. Otherwise they fall back
// to RLIMIT_AS and RLIMIT_NPROC, which are weaker: RLIMIT_AS bounds address
// space, not memory, per process; RLIMIT_NPROC counts every process of the
// same host uid (reshd's own threads when it is not root, every job when it
// is), so concurrent jobs share it. CPU time (RLIMIT_CPU) and file size
// (RLIMIT_FSIZE) are always rlimits. Wall time and output size are watched
// by reshd, which kills the whole job at the limit. Killing the PID
// namespace's init (or the cgroup) ends every process of the job,
// including backgrounded ones; Run returns only once they are gone.
//
// # What it does not protect against
//
// The sandbox shares the host's kernel: a kernel exploit (the user
// namespace widens the kernel's attack surface) escapes it. There is no
// seccomp filter. Side channels (timing, cache, Spectre-like attacks,
// /proc's system-wide files such as /proc/meminfo and load averages) are
// open. The job can use all CPUs and disk bandwidth within its limits, and
// fill /tmp and /dev/shm up to its memory limit each (tmpfs of that size,
// whose pages the memory cgroup counts too, so the sum is bounded when
// there is one). Files under /work can reach Limits.FileSize each,
// with no bound on their number beyond the disk. bwrap itself and the
// first shell are counted in the job's limits, but reshd's copying of
// output is not. Anything readable in the system directories is readable
// by the job.
package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultEnv is the environment of a job whose Spec.Env is nil.
var DefaultEnv = []string{"PATH=" + DefaultPath, "HOME=/work", "LANG=C.UTF-8"}

// DefaultPath is the PATH of DefaultEnv: the system's program directories,
// all visible (read-only) in the sandbox. Languages are detected in it
// (lang.Set.DetectIn), so that a tool found is a tool the job can run.
const DefaultPath = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"

// Errors for misuse of Run; failures of the sandbox itself are Results with
// Outcome SandboxError.
var (
	// ErrNoCommand: Spec.Argv is empty.
	ErrNoCommand = errors.New("sandbox: no command to run")
	// ErrBadDir: Spec.Dir is not an absolute path to a directory.
	ErrBadDir = errors.New("sandbox: the work directory must be an absolute path to a directory")
	// ErrDirHidden: reshd is root and nobody, whom the job runs as, cannot
	// reach Spec.Dir: every directory above it must be searchable by
	// others (mode o+x). bwrap, run as nobody, opens it by name.
	ErrDirHidden = errors.New("sandbox: the work directory's parents must be searchable by others (o+x) when reshd runs as root")
	// ErrBadEnv: an entry of Spec.Env is not NAME=value.
	ErrBadEnv = errors.New("sandbox: environment entries must be NAME=value")
)

// Spec is one command to run.
type Spec struct {
	// Dir is the work directory, made by the caller and holding the
	// program: bound read-write at /work, the command's current directory.
	// When reshd runs as root, Run gives it and its files to nobody, and
	// the directories above it must be searchable by others (ErrDirHidden):
	// keep the jobs' directories in a 0711 directory of their own.
	Dir string
	// Argv is the command, looked up in the sandbox's PATH
	// (DefaultPath) when it has no slash.
	Argv []string
	// Env is the whole environment; nil means DefaultEnv.
	Env []string
	// Stdin is the command's standard input; nil means none (EOF).
	Stdin io.Reader
	// Stdout and Stderr receive the command's output, up to
	// Limits.Output bytes each; nil discards it (it is still counted).
	Stdout, Stderr io.Writer
	// Limits bound the run; zero fields take the defaults.
	Limits Limits
}

// cpuPoll is how often the cgroup's CPU time is checked against the limit.
const cpuPoll = 100 * time.Millisecond

// startTimeout bounds the wait for a killed job's processes to go.
const startTimeout = 10 * time.Second

// Run runs s.Argv in a sandbox and returns how it ended. The error is
// non-nil only for misuse (ErrNoCommand, ErrBadDir, ErrDirHidden,
// ErrBadEnv) and when
// ctx ends first (ctx.Err(), with the job killed and the Result filled
// in); a sandbox that cannot be built is a Result with Outcome
// SandboxError. Run returns once every process of the job is gone. Runs
// may go on at once. Run marks every descriptor of the calling process
// close-on-exec (see markCloexec).
func Run(ctx context.Context, s Spec) (Result, error) {
	if len(s.Argv) == 0 {
		return Result{}, ErrNoCommand
	}
	if fi, err := os.Stat(s.Dir); err != nil || !fi.IsDir() || !filepath.IsAbs(s.Dir) {
		return Result{}, ErrBadDir
	}
	env := s.Env
	if env == nil {
		env = DefaultEnv
	}
	for _, e := range env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return Result{}, ErrBadEnv
		}
	}
	if os.Geteuid() == 0 && !reachable(filepath.Dir(filepath.Clean(s.Dir))) {
		return Result{}, ErrDirHidden
	}
	if err := Available(); err != nil {
		return sandboxError(err), nil
	}
	r := &runner{spec: s, env: env, lim: s.Limits.withDefaults(), done: make(chan struct{}), initFd: -1}
	return r.run(ctx)
}

func sandboxError(err error) Result {
	return Result{Outcome: SandboxError, Code: -1, Detail: err.Error()}
}

// runner is the state of one Run.
type runner struct {
	spec Spec
	env  []string
	lim  Limits
	cmd  *exec.Cmd
	cg   *cgroup

	done chan struct{} // closed when the job's first process has ended

	mu     sync.Mutex
	initFd int     // pidfd of the PID namespace's init, -1 until known and after the end
	initOK bool    // initFd was bwrap's child when opened: it may be killed
	reason Outcome // first limit hit; valid when stopped
	detail string
	stop   bool
}

// kill ends the job for reason (the first reason wins).
func (r *runner) kill(reason Outcome, detail string) {
	r.mu.Lock()
	if !r.stop {
		r.stop, r.reason, r.detail = true, reason, detail
	}
	r.mu.Unlock()
	r.killAll()
}

// killAll kills every process of the job. Killing the namespace's init
// makes the kernel kill the rest, and bwrap outside exits only once they
// are all gone. The init is held by a pidfd, so a kill never reaches a
// process that took its pid after it ended. Before bwrap has told the
// init's pid, bwrap itself is killed (and the cgroup, if any):
// --die-with-parent then takes the init down.
func (r *runner) killAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.initFd >= 0 && r.initOK {
		unix.PidfdSendSignal(r.initFd, unix.SIGKILL, nil, 0)
		return
	}
	select {
	case <-r.done:
		return
	default:
	}
	if r.cg != nil {
		r.cg.kill()
	}
	r.cmd.Process.Kill()
}

// setInit takes a pidfd on the namespace's init, pid, and kills it if the
// job was stopped meanwhile. The pid could have been reused between
// bwrap's report and the open if the init ended at once, so the pidfd is
// used for kills only if the process is still bwrap's child; if bwrap was
// already killed (the init then died of --die-with-parent and is no longer
// its child), it is only waited for.
func (r *runner) setInit(pid int) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	i := bytes.LastIndexByte(b, ')')
	ok := err == nil && i >= 0 &&
		bytes.HasPrefix(b[i:], []byte(fmt.Sprintf(") %c %d ", statState(b[i:]), r.cmd.Process.Pid)))
	r.mu.Lock()
	stop := r.stop
	if !ok && !stop {
		r.mu.Unlock()
		unix.Close(fd)
		return
	}
	r.initFd, r.initOK = fd, ok
	r.mu.Unlock()
	if stop {
		r.killAll()
	}
}

// statState returns the state letter in the tail of /proc/PID/stat from
// the ')' ending the command name: ") S 1234 ...".
func statState(tail []byte) byte {
	if len(tail) < 3 {
		return 0
	}
	return tail[2]
}

// endInit waits (up to d) for the init to be gone, which happens only
// once every process of its namespace is, and releases its pidfd.
func (r *runner) endInit(d time.Duration) {
	r.mu.Lock()
	fd := r.initFd
	r.mu.Unlock()
	if fd < 0 {
		return
	}
	// A pidfd polls readable once the process has exited.
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		n, err := unix.Poll(pfd, int(time.Until(deadline)/time.Millisecond)+1)
		if n > 0 || (err != nil && err != unix.EINTR) {
			break
		}
	}
	r.mu.Lock()
	unix.Close(fd)
	r.initFd = -1
	r.mu.Unlock()
}

func (r *runner) stopped() (bool, Outcome, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stop, r.reason, r.detail
}

func (r *runner) run(ctx context.Context) (res Result, err error) {
	s := r.spec
	if os.Geteuid() == 0 {
		if err := chownTree(s.Dir, jobUID, jobGID); err != nil {
			return sandboxError(fmt.Errorf("sandbox: handing the work directory to the job: %w", err)), nil
		}
	}
	var files closers
	defer files.close()
	syncR, syncW, err := files.pipe()
	if err != nil {
		return sandboxError(err), nil
	}
	infoR, infoW, err := files.pipe()
	if err != nil {
		return sandboxError(err), nil
	}
	startedR, startedW, err := files.pipe()
	if err != nil {
		return sandboxError(err), nil
	}
	passwd, err := files.dataPipe(passwdData)
	if err != nil {
		return sandboxError(err), nil
	}
	group, err := files.dataPipe(groupData)
	if err != nil {
		return sandboxError(err), nil
	}

	if useCgroups {
		// No cgroup is not an error: the limits fall back to rlimits.
		if cg, err := newCgroup(r.lim); err == nil {
			r.cg = cg
			defer cg.remove()
		}
	}

	bwrap, _ := exec.LookPath("bwrap")
	prlimit, _ := exec.LookPath("prlimit")
	args := []string{"-c", wrapperScript, "sh"}
	args = append(args, prlimitArgs(prlimit, r.lim.rlimits(r.cg != nil))...)
	args = append(args, bwrap)
	args = append(args, bwrapArgs(s.Dir, s.Argv, r.env, r.lim.Memory)...)
	cmd := exec.Command("/bin/sh", args...)
	r.cmd = cmd
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = sysProcAttr()
	cmd.ExtraFiles = []*os.File{syncR, infoW, passwd, group, startedW}
	cmd.Stdin = s.Stdin
	// A Stdin whose Read blocks must not hold Run once the job has ended.
	cmd.WaitDelay = time.Second
	out := &limitWriter{w: s.Stdout, max: r.lim.Output, name: "stdout", r: r}
	errw := &limitWriter{w: s.Stderr, max: r.lim.Output, name: "stderr", r: r, keep: 512}
	cmd.Stdout, cmd.Stderr = out, errw

	markCloexec()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return sandboxError(fmt.Errorf("sandbox: starting bwrap: %w", err)), nil
	}
	// The child has its copies; ours of its ends must go so EOFs arrive.
	for _, f := range []*os.File{syncR, infoW, startedW, passwd, group} {
		files.closeOne(f)
	}
	pid := cmd.Process.Pid
	setup := func() error {
		if r.cg != nil {
			if err := r.cg.add(pid); err != nil {
				return err
			}
		}
		_, err := syncW.Write([]byte("\n"))
		return err
	}
	if err := setup(); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return sandboxError(err), nil
	}
	files.closeOne(syncW)

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // bwrap's {"child-pid": N}
		defer wg.Done()
		dec := json.NewDecoder(bufio.NewReader(infoR))
		var info struct {
			ChildPid int `json:"child-pid"`
		}
		if dec.Decode(&info) == nil && info.ChildPid > 0 {
			r.setInit(info.ChildPid)
		}
		io.Copy(io.Discard, infoR)
	}()
	// "x" when the command starts, times(1)'s output when it ends.
	report := make(chan []byte, 1)
	go func() {
		defer wg.Done()
		b, _ := io.ReadAll(startedR)
		report <- b
	}()
	wall := time.AfterFunc(r.lim.Wall, func() {
		r.kill(TimeLimit, fmt.Sprintf("wall time %v exceeded", r.lim.Wall))
	})
	defer wall.Stop()
	ctxDone := make(chan struct{})
	go func() {
		defer close(ctxDone)
		// With CPU accounting in the cgroup, the CPU limit also bounds the
		// sum over the job's processes, not only each one (RLIMIT_CPU).
		var tick <-chan time.Time
		if r.cg != nil && r.cg.cpuacct != "" {
			t := time.NewTicker(cpuPoll)
			defer t.Stop()
			tick = t.C
		}
		for {
			select {
			case <-ctx.Done():
				r.kill(SandboxError, "canceled: "+ctx.Err().Error())
				return
			case <-r.done:
				return
			case <-tick:
				if c, ok := r.cg.cpu(); ok && c >= r.lim.CPU {
					r.kill(TimeLimit, fmt.Sprintf("cpu time %v exceeded", r.lim.CPU))
					return
				}
			}
		}
	}()

	waitErr := cmd.Wait()
	close(r.done)
	<-ctxDone
	wall.Stop()
	res.Wall = time.Since(start)
	if r.cg != nil && !r.cg.drain(startTimeout) {
		// Should not happen: the namespace is gone. Keep the cgroup.
		r.cg = nil
	}
	// All writers of the info and started pipes are gone with the job.
	wg.Wait()
	r.endInit(startTimeout)
	rep := <-report
	ran := len(rep) > 0 && rep[0] == 'x'
	res.CPU = childTimes(rep)

	ps := cmd.ProcessState
	if r.cg != nil {
		res.PeakMemory = r.cg.peak()
		if c, ok := r.cg.cpu(); ok {
			res.CPU = c
		}
	}
	res.Stdout, res.Stderr = out.n, errw.n
	res.Code, res.Signal = -1, 0
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
		switch {
		case ws.Signaled():
			res.Signal = int(ws.Signal())
		case ws.Exited() && ws.ExitStatus() > 128 && ws.ExitStatus() < 128+65:
			res.Signal = ws.ExitStatus() - 128
		case ws.Exited():
			res.Code = ws.ExitStatus()
		}
	}

	stop, reason, detail := r.stopped()
	switch {
	case stop:
		res.Outcome, res.Detail, res.Code = reason, detail, -1
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
	case !ran:
		msg := strings.TrimSpace(string(errw.kept))
		if msg == "" && waitErr != nil {
			msg = waitErr.Error()
		}
		res.Outcome, res.Code, res.Detail = SandboxError, -1, "sandbox could not start: "+msg
	case r.cg != nil && r.cg.oomKilled():
		res.Outcome, res.Code = MemoryLimit, -1
		res.Detail = fmt.Sprintf("memory limit %s exceeded", size(r.lim.Memory))
	case res.Signal == int(syscall.SIGXCPU) || (res.Signal == int(syscall.SIGKILL) && res.CPU >= r.lim.CPU):
		res.Outcome, res.Code = TimeLimit, -1
		res.Detail = fmt.Sprintf("cpu time %v exceeded", time.Duration(r.lim.cpuSeconds())*time.Second)
	case res.Signal != 0:
		res.Outcome = Signaled
	default:
		res.Outcome = Exited
	}
	return res, nil
}

// limitWriter passes up to max bytes to w, then kills the job with
// OutputLimit. It keeps the first keep bytes (bwrap's message when the
// sandbox cannot start).
type limitWriter struct {
	w    io.Writer
	max  int64
	n    int64
	name string
	r    *runner
	keep int
	kept []byte
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if k := l.keep - len(l.kept); k > 0 {
		l.kept = append(l.kept, p[:min(k, len(p))]...)
	}
	over := int64(len(p)) > l.max-l.n
	q := p
	if over {
		q = p[:l.max-l.n]
	}
	if len(q) > 0 && l.w != nil {
		if _, err := l.w.Write(q); err != nil {
			// The caller's writer failed: the output has nowhere to go.
			l.r.kill(SandboxError, fmt.Sprintf("writing %s: %v", l.name, err))
			return 0, err
		}
	}
	l.n += int64(len(q))
	if over {
		l.r.kill(OutputLimit, fmt.Sprintf("%s beyond %s", l.name, size(l.max)))
		return len(q), errOutputLimit
	}
	return len(p), nil
}

var errOutputLimit = errors.New("sandbox: output limit")

// size formats n bytes for a user.
func size(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// childTimes parses the report of innerScript ("x" then the output of
// times(1): the shell's own user and system time on one line, its
// children's on the next) and returns the children's CPU time, 0 if absent.
func childTimes(rep []byte) time.Duration {
	lines := strings.Split(strings.TrimSpace(string(rep)), "\n")
	if len(lines) < 2 {
		return 0
	}
	var total time.Duration
	for _, f := range strings.Fields(lines[len(lines)-1]) {
		// 0m1.234000s
		m, sec, ok := strings.Cut(strings.TrimSuffix(f, "s"), "m")
		if !ok {
			return 0
		}
		d, err1 := time.ParseDuration(m + "m")
		e, err2 := time.ParseDuration(sec + "s")
		if err1 != nil || err2 != nil {
			return 0
		}
		total += d + e
	}
	return total
}

// reachable reports whether others may search dir and every directory
// above it.
func reachable(dir string) bool {
	for {
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}

// chownTree gives dir and everything under it to uid:gid (symlinks
// themselves, not their targets).
func chownTree(dir string, uid, gid int) error {
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// markCloexec marks every descriptor of this process above stderr
// close-on-exec. Go opens its own that way, but descriptors inherited from
// reshd's parent are not, and exec would pass them on into the sandbox (a
// pipe to whoever started reshd, a socket...). ExtraFiles are dup2'ed in
// the child and so stay open there.
func markCloexec() {
	if unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC) == nil {
		return
	}
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
		}
	}
}

// closers holds the descriptors of one Run, closed once each.
type closers struct{ files []*os.File }

func (c *closers) add(f *os.File) { c.files = append(c.files, f) }

func (c *closers) pipe() (r, w *os.File, err error) {
	r, w, err = os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("sandbox: %w", err)
	}
	c.add(r)
	c.add(w)
	return r, w, nil
}

// dataPipe returns the read end of a pipe holding data (small enough for
// the pipe's buffer) and closed for writing.
func (c *closers) dataPipe(data string) (*os.File, error) {
	r, w, err := c.pipe()
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(w, bytes.NewReader([]byte(data)))
	c.closeOne(w)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	return r, nil
}

func (c *closers) closeOne(f *os.File) {
	for i, g := range c.files {
		if g == f {
			f.Close()
			c.files = append(c.files[:i], c.files[i+1:]...)
			return
		}
	}
}

func (c *closers) close() {
	for _, f := range c.files {
		f.Close()
	}
	c.files = nil
}
