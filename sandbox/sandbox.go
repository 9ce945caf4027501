// Package sandbox runs the commands of one job — a compile, then the
// program — in a bubblewrap sandbox with limits, and says how each ended.
// It is the building block of the job runner.
//
// A Sandbox is built once (Start) and runs commands one after the other
// (Exec) until Close, which kills what is left and removes its cgroup; a
// job's compile and program share it, their work directory and /tmp. A
// Pool builds sandboxes ahead of the jobs, each in a fresh work directory,
// so that a job does not wait for bwrap, its namespaces and its cgroup
// (10–30 ms, the move into a cgroup being the slow and irregular part on
// cgroup v1). Run is Start, one Exec and Close.
//
// # The sandbox
//
// Each sandbox is a bwrap with its own user, PID, network, IPC, UTS (and,
// where possible, cgroup) namespaces: the job sees no network but an empty
// loopback, no process but its own, and runs as uid/gid 65534 (nobody)
// with no capabilities and no way to make further user namespaces. The
// system directories (/usr, /bin, /lib...) are bound read-only, and of /etc
// only the loader cache, the alternatives, the time zone, the JDK's
// configuration and a minimal passwd and group made up for the sandbox.
// /tmp is a fresh tmpfs, /proc and /dev are the sandbox's own, and /work is
// the work directory, read-write, the current directory. Nothing else of
// the host is there: not reshd's home, RESH_HOME, other jobs' directories
// nor /etc/shadow. The environment is cleared and set to Options.Env (a
// minimal default) plus each Command.Env. The job has its own session, so
// it cannot push input into a terminal. In the sandbox a shell of reshd's
// (innerScript) runs each command, which cannot reach that shell's pipes.
//
// When reshd runs as root, bwrap is started as nobody (see sysProcAttr),
// and the work directory and the files written there (Sandbox.WriteFile)
// are handed to nobody.
//
// # Limits
//
// See Limits; each command has its own. Memory and processes are bounded
// by a cgroup of the sandbox's own when one can be made (cgroup v1 memory
// and pids hierarchies, or a delegated cgroup v2 subtree: in practice when
// reshd is root or systemd delegated it a subtree), whose limits are set
// before each command; this also counts the tmpfs /tmp, and tells a memory
// limit apart from a program's own failure. Otherwise they fall back to
// RLIMIT_AS and RLIMIT_NPROC, which are weaker: RLIMIT_AS bounds address
// space, not memory, per process; RLIMIT_NPROC counts every process of the
// same host uid (reshd's own threads when it is not root, every job when it
// is), so concurrent jobs share it. CPU time (RLIMIT_CPU) and file size
// (RLIMIT_FSIZE) are always rlimits, set by the sandbox's shell (ulimit)
// on each command before it execs it.
// Wall time and output size are watched by reshd, which kills the whole
// sandbox at the limit. Killing the PID namespace's init (or the cgroup)
// ends every process of the job, including backgrounded ones; Close and Run
// return only once they are gone. A process that one command leaves behind
// lives on into the next command of the same sandbox (the same job's),
// within that command's limits.
//
// # What it does not protect against
//
// The sandbox shares the host's kernel: a kernel exploit (the user
// namespace widens the kernel's attack surface) escapes it. There is no
// seccomp filter. Side channels (timing, cache, Spectre-like attacks,
// /proc's system-wide files such as /proc/meminfo and load averages) are
// open. The job can use all CPUs and disk bandwidth within its limits, and
// fill /tmp and /dev/shm up to Options.TmpSize each (a job runner that
// keeps a Pool sizes them for the largest job it takes; the memory cgroup,
// when there is one, counts their pages too and so bounds them by the
// command's memory limit). Files under /work can reach Limits.FileSize
// each, with no bound on their number beyond the disk. bwrap's child (the
// sandbox's init) and the sandbox's shell are counted in the job's cgroup
// limits, but reshd's copying of output is not. Anything readable in the
// system directories is readable by the job. The sandbox's shell reports
// each command's end and CPU time; a job that takes it over (it runs as
// the same user) can lie about its own status, but not escape a limit,
// which reshd enforces from outside.
package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// Spec is one command to run in a sandbox of its own (Run).
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

// startTimeout bounds the wait for a sandbox to be built, and for a killed
// one's processes to go.
const startTimeout = 10 * time.Second

// Run runs s.Argv in a sandbox of its own (Start, Exec, Close) and returns
// how it ended. The error is non-nil only for misuse (ErrNoCommand,
// ErrBadDir, ErrDirHidden, ErrBadEnv) and when ctx ends first (ctx.Err(),
// with the job killed and the Result filled in); a sandbox that cannot be
// built is a Result with Outcome SandboxError. Run returns once every
// process of the job is gone. Runs may go on at once.
func Run(ctx context.Context, s Spec) (Result, error) {
	if len(s.Argv) == 0 {
		return Result{}, ErrNoCommand
	}
	lim := s.Limits.withDefaults()
	sb, err := Start(Options{Dir: s.Dir, Env: s.Env, TmpSize: lim.Memory, Limits: lim})
	if err != nil {
		var se *StartError
		if errors.As(err, &se) {
			return sandboxError(se), nil
		}
		return Result{}, err
	}
	defer sb.Close()
	return sb.Exec(ctx, Command{Argv: s.Argv, Stdin: s.Stdin, Stdout: s.Stdout, Stderr: s.Stderr, Limits: lim})
}

func sandboxError(err error) Result {
	return Result{Outcome: SandboxError, Code: -1, Detail: err.Error()}
}

// limitWriter passes up to max bytes to w, then kills the sandbox with
// OutputLimit.
type limitWriter struct {
	w    io.Writer
	max  int64
	n    int64
	name string
	kill func(Outcome, string)
}

func (l *limitWriter) Write(p []byte) (int, error) {
	over := int64(len(p)) > l.max-l.n
	q := p
	if over {
		q = p[:l.max-l.n]
	}
	if len(q) > 0 && l.w != nil {
		if _, err := l.w.Write(q); err != nil {
			// The caller's writer failed: the output has nowhere to go.
			l.kill(SandboxError, fmt.Sprintf("writing %s: %v", l.name, err))
			return 0, err
		}
	}
	l.n += int64(len(q))
	if over {
		l.kill(OutputLimit, fmt.Sprintf("%s beyond %s", l.name, size(l.max)))
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

// childTimes parses the second line of times(1)'s output, the user and
// system time of the shell's children ("0m0.010000s 0m0.004000s"), and
// returns their sum, 0 if it cannot.
func childTimes(line string) time.Duration {
	var total time.Duration
	for _, f := range strings.Fields(line) {
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

// forget drops f from c without closing it.
func (c *closers) forget(f *os.File) {
	for i, g := range c.files {
		if g == f {
			c.files = append(c.files[:i], c.files[i+1:]...)
			return
		}
	}
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
