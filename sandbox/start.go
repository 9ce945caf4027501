package sandbox

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Options say how to build a sandbox (Start).
type Options struct {
	// Dir is the work directory, bound read-write at /work, the commands'
	// current directory. See Spec.Dir for what it must be when reshd runs
	// as root.
	Dir string
	// Env is the environment of every command, before Command.Env; nil
	// means DefaultEnv.
	Env []string
	// TmpSize bounds /tmp and /dev/shm, each; 0 means DefaultMemory. A
	// memory cgroup counts what they hold too.
	TmpSize int64
	// Limits are the cgroup's limits until the first command sets its own;
	// zero fields take the defaults.
	Limits Limits
}

// StartError is a sandbox that could not be built: Detail says why and,
// where it can, how to fix it. It is reported as a SandboxError outcome.
type StartError struct{ Detail string }

func (e *StartError) Error() string { return e.Detail }

// errEnded is the detail of a command given to a sandbox that has ended.
const errEnded = "the sandbox has ended"

// Sandbox is one built sandbox, whose shell runs commands one after the
// other (Exec) until Close. Its processes, its namespaces and, when it has
// one, its cgroup are its own, for as long as it lives: the commands of one
// job (a compile, then the program) share them, and their work directory.
// A Sandbox is used by one goroutine at a time, but Close may come from
// another.
type Sandbox struct {
	dir    string
	ownDir bool // Close removes dir (a Pool made it)
	cmd    *exec.Cmd
	cg     *cgroup

	commands *os.File    // write end of fdCommands
	stdin    *os.File    // write end of the sandbox's stdin
	reports  chan string // lines of fdReport; closed at its end
	outR     [2]*os.File // read ends of stdout and stderr
	copiers  sync.WaitGroup
	readers  sync.WaitGroup
	done     chan struct{} // closed when bwrap has ended
	closing  chan struct{} // closed when Close begins

	// outMu is held while output is read from a pipe and passed on, so
	// that a pipe found empty under it has passed on all it held.
	outMu    sync.Mutex
	outCond  *sync.Cond
	sinks    [2]*limitWriter // where stdout and stderr go; nil discards
	read     [2]int64        // bytes read from stdout and stderr so far
	startErr []byte          // the first bytes of stderr before the first command

	mu        sync.Mutex
	initFd    int  // pidfd of the PID namespace's init, -1 until known and after the end
	initOK    bool // initFd was bwrap's child when opened: it may be killed
	stop      bool // the sandbox was killed
	reason    Outcome
	detail    string
	stdinUsed bool
	closed    bool

	children time.Duration // CPU time of the shell's children at the last report
}

// Start builds a sandbox in opts.Dir and returns once its shell is ready
// for commands. The error is a *StartError when the sandbox could not be
// built, else misuse (ErrBadDir, ErrDirHidden, ErrBadEnv). Start marks
// every descriptor of the calling process close-on-exec (see
// markCloexec).
func Start(opts Options) (*Sandbox, error) {
	if fi, err := os.Stat(opts.Dir); err != nil || !fi.IsDir() || !filepath.IsAbs(opts.Dir) {
		return nil, ErrBadDir
	}
	env := opts.Env
	if env == nil {
		env = DefaultEnv
	}
	if err := checkEnv(env); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 && !reachable(filepath.Dir(filepath.Clean(opts.Dir))) {
		return nil, ErrDirHidden
	}
	if err := Available(); err != nil {
		return nil, &StartError{err.Error()}
	}
	tmp := opts.TmpSize
	if tmp <= 0 {
		tmp = DefaultMemory
	}
	sb := &Sandbox{dir: opts.Dir, done: make(chan struct{}), closing: make(chan struct{}), initFd: -1,
		reports: make(chan string, 8), startErr: make([]byte, 0, 512)}
	sb.outCond = sync.NewCond(&sb.outMu)
	if err := sb.start(env, tmp, opts.Limits.withDefaults()); err != nil {
		sb.Close()
		return nil, err
	}
	return sb, nil
}

// checkEnv requires NAME=value entries.
func checkEnv(env []string) error {
	for _, e := range env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return ErrBadEnv
		}
	}
	return nil
}

func (sb *Sandbox) start(env []string, tmpSize int64, lim Limits) error {
	if os.Geteuid() == 0 {
		if err := chownTree(sb.dir, jobUID, jobGID); err != nil {
			return &StartError{fmt.Sprintf("sandbox: handing the work directory to the job: %v", err)}
		}
	}
	var files closers
	defer files.close()
	pipe := func() (r, w *os.File) {
		if r, w, err := files.pipe(); err == nil {
			return r, w
		}
		return nil, nil
	}
	syncR, syncW := pipe()
	infoR, infoW := pipe()
	reportR, reportW := pipe()
	commandR, commandW := pipe()
	stdinR, stdinW := pipe()
	outR, outW := pipe()
	errR, errW := pipe()
	passwd, err1 := files.dataPipe(passwdData)
	group, err2 := files.dataPipe(groupData)
	if syncR == nil || infoR == nil || reportR == nil || commandR == nil || stdinR == nil || outR == nil || errR == nil || err1 != nil || err2 != nil {
		return &StartError{"sandbox: cannot make pipes: " + errors.Join(err1, err2, errors.New("too many open files?")).Error()}
	}
	// Ours to keep; the files closer must not close them.
	for _, f := range []*os.File{infoR, reportR, commandW, stdinW, outR, errR} {
		files.forget(f)
	}
	sb.commands, sb.stdin, sb.outR = commandW, stdinW, [2]*os.File{outR, errR}

	if useCgroups {
		// No cgroup is not an error: the limits fall back to rlimits.
		if cg, err := newCgroup(lim); err == nil {
			sb.cg = cg
		}
	}

	cmd := exec.Command(bwrapPath(), bwrapArgs(sb.dir, env, tmpSize)...)
	sb.cmd = cmd
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = sysProcAttr()
	cmd.ExtraFiles = []*os.File{syncR, infoW, passwd, group, reportW, commandR}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdinR, outW, errW

	markCloexec()
	if err := cmd.Start(); err != nil {
		infoR.Close()
		reportR.Close()
		close(sb.reports)
		close(sb.done)
		return &StartError{fmt.Sprintf("sandbox: starting bwrap: %v", err)}
	}
	// The child has its copies; ours of its ends must go so EOFs arrive.
	for _, f := range []*os.File{syncR, infoW, reportW, commandR, stdinR, outW, errW, passwd, group} {
		files.closeOne(f)
	}
	go func() {
		_ = cmd.Wait()
		close(sb.done)
	}()
	sb.readers.Add(2)
	childPid := make(chan int, 1)
	go func() { // bwrap's {"child-pid": N}
		defer sb.readers.Done()
		defer infoR.Close()
		dec := json.NewDecoder(bufio.NewReader(infoR))
		var info struct {
			ChildPid int `json:"child-pid"`
		}
		if dec.Decode(&info) == nil && info.ChildPid > 0 {
			sb.setInit(info.ChildPid)
		}
		childPid <- info.ChildPid
		_, _ = io.Copy(io.Discard, infoR)
	}()
	go func() {
		defer sb.readers.Done()
		defer reportR.Close()
		defer close(sb.reports)
		sc := bufio.NewScanner(reportR)
		for sc.Scan() {
			select {
			case sb.reports <- sc.Text():
			case <-sb.closing:
				return
			}
		}
	}()
	sb.copiers.Add(2)
	for i := range sb.outR {
		go sb.copyOut(i)
	}

	t := time.NewTimer(startTimeout)
	defer t.Stop()
	if sb.cg != nil {
		ok, err := sb.intoCgroup(childPid, t.C)
		if err != nil {
			sb.kill(SandboxError, "")
			return &StartError{err.Error()}
		}
		if !ok {
			return sb.startFailed()
		}
	}
	if _, err := syncW.Write([]byte("\n")); err != nil {
		return &StartError{fmt.Sprintf("sandbox: %v", err)}
	}
	files.closeOne(syncW)

	select {
	case line, ok := <-sb.reports:
		if ok && line == "ready" {
			sb.outMu.Lock()
			sb.startErr = nil
			sb.outMu.Unlock()
			return nil
		}
	case <-t.C:
		sb.kill(SandboxError, "")
		return &StartError{fmt.Sprintf("sandbox could not start: not ready after %v", startTimeout)}
	}
	return sb.startFailed()
}

// intoCgroup moves bwrap's child into the cgroup once bwrap has told its
// pid (childPid). The child builds the sandbox and waits on fdSync before
// it starts anything, so whatever runs in the sandbox is born in the
// cgroup; bwrap itself, outside, only waits for it. ok is false when the
// child cannot be moved: it is gone, or no longer bwrap's (see setInit),
// and must not be let go on.
func (sb *Sandbox) intoCgroup(childPid <-chan int, timeout <-chan time.Time) (ok bool, err error) {
	var pid int
	select {
	case pid = <-childPid:
	case <-timeout:
		return false, fmt.Errorf("sandbox could not start: bwrap said nothing after %v", startTimeout)
	}
	sb.mu.Lock()
	ok = pid > 0 && sb.initFd >= 0 && sb.initOK
	sb.mu.Unlock()
	if !ok {
		return false, nil
	}
	if err := sb.cg.add(pid); err != nil {
		// ESRCH: bwrap failed, and says why on stderr.
		return false, ignore(err, syscall.ESRCH)
	}
	return true, nil
}

// ignore returns err unless it is target.
func ignore(err, target error) error {
	if errors.Is(err, target) {
		return nil
	}
	return err
}

// startFailed kills a sandbox that did not come up and returns why:
// bwrap's message, which is on stderr, which ends with it.
func (sb *Sandbox) startFailed() error {
	sb.kill(SandboxError, "")
	sb.copiers.Wait()
	msg := strings.TrimSpace(string(sb.startErr))
	if msg == "" {
		<-sb.done
		if ps := sb.cmd.ProcessState; ps != nil {
			msg = ps.String()
		}
	}
	return &StartError{"sandbox could not start: " + msg}
}

// copyOut passes what comes out of stdout (i 0) or stderr (1) to its sink,
// reading and passing on under outMu (see Exec's end).
func (sb *Sandbox) copyOut(i int) {
	defer sb.copiers.Done()
	f := sb.outR[i]
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, 32<<10)
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			sb.outMu.Lock()
			defer sb.outMu.Unlock()
			n, rerr = unix.Read(int(fd), buf)
			if rerr == unix.EAGAIN {
				return false
			}
			if n > 0 {
				sb.read[i] += int64(n)
				sb.pass(i, buf[:n])
			}
			sb.outCond.Broadcast()
			return true
		})
		if err != nil || rerr != nil || n <= 0 {
			sb.outMu.Lock()
			sb.outR[i] = nil
			sb.outCond.Broadcast()
			sb.outMu.Unlock()
			return
		}
	}
}

// pass hands p, read from stdout (i 0) or stderr (1), to its sink. Called
// with outMu held.
func (sb *Sandbox) pass(i int, p []byte) {
	if w := sb.sinks[i]; w != nil {
		_, _ = w.Write(p)
		return
	}
	if i == 1 && sb.startErr != nil && len(sb.startErr) < 512 {
		sb.startErr = append(sb.startErr, p[:min(len(p), 512-len(sb.startErr))]...)
	}
}

// Dir is the sandbox's work directory, as reshd sees it.
func (sb *Sandbox) Dir() string { return sb.dir }

// WriteFile writes a file of the job in the work directory (name is a plain
// file name), given to the job's user when reshd runs as root.
func (sb *Sandbox) WriteFile(name string, data []byte, perm os.FileMode) error {
	if name != filepath.Base(name) || name == "." || name == ".." {
		return fmt.Errorf("sandbox: %q is not a file name: %w", name, os.ErrInvalid)
	}
	p := filepath.Join(sb.dir, name)
	if err := os.WriteFile(p, data, perm); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		return os.Lchown(p, jobUID, jobGID)
	}
	return nil
}

// kill ends the sandbox for reason (the first reason wins).
func (sb *Sandbox) kill(reason Outcome, detail string) {
	sb.mu.Lock()
	if !sb.stop {
		sb.stop, sb.reason, sb.detail = true, reason, detail
	}
	sb.mu.Unlock()
	sb.killAll()
}

// killAll kills every process of the sandbox. Killing the namespace's init
// makes the kernel kill the rest, and bwrap outside exits only once they
// are all gone. The init is held by a pidfd, so a kill never reaches a
// process that took its pid after it ended. Before bwrap has told the
// init's pid, bwrap itself is killed (and the cgroup, if any):
// --die-with-parent then takes the init down.
func (sb *Sandbox) killAll() {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.initFd >= 0 && sb.initOK {
		_ = unix.PidfdSendSignal(sb.initFd, unix.SIGKILL, nil, 0)
		return
	}
	select {
	case <-sb.done:
		return
	default:
	}
	if sb.cg != nil {
		sb.cg.kill()
	}
	if sb.cmd != nil && sb.cmd.Process != nil {
		_ = sb.cmd.Process.Kill()
	}
}

// setInit takes a pidfd on the namespace's init, pid, and kills it if the
// sandbox was killed meanwhile. The pid could have been reused between
// bwrap's report and the open if the init ended at once, so the pidfd is
// used for kills only if the process is still bwrap's child; if bwrap was
// already killed (the init then died of --die-with-parent and is no longer
// its child), it is only waited for.
func (sb *Sandbox) setInit(pid int) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	i := bytes.LastIndexByte(b, ')')
	ok := err == nil && i >= 0 &&
		bytes.HasPrefix(b[i:], []byte(fmt.Sprintf(") %c %d ", statState(b[i:]), sb.cmd.Process.Pid)))
	sb.mu.Lock()
	stop := sb.stop
	if !ok && !stop {
		sb.mu.Unlock()
		unix.Close(fd)
		return
	}
	sb.initFd, sb.initOK = fd, ok
	sb.mu.Unlock()
	if stop {
		sb.killAll()
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
func (sb *Sandbox) endInit(d time.Duration) {
	sb.mu.Lock()
	fd := sb.initFd
	sb.mu.Unlock()
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
	sb.mu.Lock()
	unix.Close(fd)
	sb.initFd = -1
	sb.mu.Unlock()
}

func (sb *Sandbox) stopped() (bool, Outcome, string) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.stop, sb.reason, sb.detail
}

// Close kills whatever still runs in the sandbox and returns once every
// process of it is gone and its cgroup removed (and its work directory,
// when a Pool made it). It may be called more than once, and while Exec
// runs (which then ends with a SandboxError).
func (sb *Sandbox) Close() {
	sb.mu.Lock()
	if sb.closed {
		sb.mu.Unlock()
		return
	}
	sb.closed = true
	close(sb.closing)
	sb.mu.Unlock()
	sb.kill(SandboxError, "canceled: the sandbox was closed")
	if sb.cmd != nil && sb.cmd.Process != nil {
		<-sb.done
	}
	if sb.cg != nil && !sb.cg.drain(startTimeout) {
		// Should not happen: the namespace is gone. Keep the cgroup.
		sb.cg = nil
	}
	sb.readers.Wait()
	sb.copiers.Wait()
	sb.endInit(startTimeout)
	if sb.cg != nil {
		sb.cg.remove()
	}
	for _, f := range []*os.File{sb.commands, sb.stdin} {
		if f != nil {
			f.Close()
		}
	}
	if sb.ownDir {
		_ = os.RemoveAll(sb.dir)
	}
}

// alive reports whether the sandbox still runs.
func (sb *Sandbox) alive() bool {
	select {
	case <-sb.done:
		return false
	default:
	}
	stop, _, _ := sb.stopped()
	return !stop
}
