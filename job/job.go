// Package job runs one submitted program (reshjob, proto/spec.md §7): it
// makes a private work directory, writes the program there as its
// language wants it, compiles it if the language has a compile step, runs
// it with its arguments, stdin and limits, and says how it ended as a
// proto.Verdict. Compile and run happen in a sandbox (package sandbox),
// or, for an executor configured unsafe, directly with rlimits and a wall
// timer. The package knows nothing of sessions: the server wires a
// session's streams to Spec's readers and writers.
package job

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"resh/lang"
	"resh/proto"
	"resh/sandbox"
)

// MaxSource bounds a program's source, in bytes.
const MaxSource = 16 << 20

// available is sandbox.Available, replaced by tests.
var available = sandbox.Available

// sandboxDir is the work directory as the sandbox's commands see it.
const sandboxDir = "/work"

// Spec is one submitted program to compile and run.
type Spec struct {
	// Language is the program's language.
	Language lang.Language
	// Source is the program's text.
	Source []byte
	// Args are the program's arguments, after the language's run command.
	Args []string
	// Limits are the limits the job asked for (zero fields: Defaults),
	// capped by Ceiling.
	Limits proto.JobLimits
	// Ceiling is the executor's ceiling; zero fields are DefaultCeiling's.
	Ceiling sandbox.Limits
	// Stdin is the program's standard input; nil is none (EOF at once).
	// Run does not wait for a Read of it that blocks once the program has
	// ended: that copy ends when the Read returns.
	Stdin io.Reader
	// Stdout and Stderr receive the program's output, live; Stderr also
	// receives the compiler's stdout and stderr. Nil discards.
	Stdout, Stderr io.Writer
	// Unsafe runs the compile and the program without a sandbox, in the
	// work directory, bounded by rlimits and a wall timer only (reshd
	// -unsafe-no-sandbox). The Verdict says so.
	Unsafe bool
	// Executor names the executor in the Verdict.
	Executor string
	// TempDir is where the work directory is made; "" is os.TempDir().
	// Unused with a Pool, whose sandboxes come with theirs.
	TempDir string
	// Pool, when not nil, gives the job a sandbox built ahead of it;
	// otherwise one is built for it.
	Pool *sandbox.Pool
}

// Run compiles and runs s's program and returns how it ended. It returns
// once every process of the job is gone and its work directory removed.
// When ctx ends first the job is killed and the Verdict is SANDBOX_ERROR
// ("canceled").
func Run(ctx context.Context, s Spec) proto.Verdict {
	start := time.Now()
	v := run(ctx, s)
	v.Executor, v.Unsafe = s.Executor, s.Unsafe
	if v.WallMS == 0 && v.Verdict != proto.VerdictOK && v.Verdict != proto.VerdictRuntimeError {
		v.WallMS = time.Since(start).Milliseconds()
	}
	return v
}

func run(ctx context.Context, s Spec) proto.Verdict {
	if !s.Unsafe {
		if err := available(); err != nil {
			return sandboxError(fmt.Sprintf("%v (or start reshd with -unsafe-no-sandbox to run programs without one, on a machine that runs only trusted programs)", err))
		}
	}
	if len(s.Source) > MaxSource {
		return sandboxError(fmt.Sprintf("the program is larger than %d bytes", MaxSource))
	}
	tmp := s.TempDir
	if tmp == "" {
		tmp = os.TempDir()
	}
	var r runner
	if s.Unsafe {
		dir, err := os.MkdirTemp(tmp, "resh-job-") // 0700
		if err != nil {
			return sandboxError(fmt.Sprintf("making the work directory: %v", err))
		}
		defer func() { _ = os.RemoveAll(dir) }()
		r.unsafeDir = dir
	} else {
		sb, err := s.sandbox(tmp)
		if err != nil {
			return sandboxError(err.Error())
		}
		defer sb.Close()
		r.sb = sb
	}
	r.s, r.stderr = s, &lockedWriter{w: s.Stderr}

	seen := sandboxDir
	if s.Unsafe {
		seen = r.unsafeDir
	}
	prog, err := s.Language.Prepare(s.Source, seen)
	if err != nil {
		// The program is not one of its language (no class in Java).
		_, _ = fmt.Fprintf(r.stderr, "%v\n", err)
		return proto.Verdict{Verdict: proto.VerdictCompileError, Detail: err.Error(), Status: -1}
	}
	if prog.Source != filepath.Base(prog.Source) || prog.Source == "." || prog.Source == ".." {
		return sandboxError(fmt.Sprintf("language %s names its source %q, not a file name", s.Language.Name, prog.Source))
	}
	if err := r.writeSource(prog.Source, s.Source); err != nil {
		return sandboxError(fmt.Sprintf("writing the program: %v", err))
	}

	if len(prog.Compile) > 0 {
		res, err := r.exec(ctx, prog.Compile, prog.Env, CompileLimits, nil, r.stderr, r.stderr)
		if err != nil {
			return canceled(err)
		}
		switch res.Outcome {
		case sandbox.SandboxError:
			return sandboxError(res.Detail)
		case sandbox.Exited:
			if res.Code != 0 {
				return compileError(res, fmt.Sprintf("the compiler exited with status %d", res.Code))
			}
		case sandbox.Signaled:
			return compileError(res, fmt.Sprintf("the compiler was killed by signal %d", res.Signal))
		default:
			return compileError(res, "compile: "+res.Detail)
		}
	}

	lim := Limits(s.Limits, s.Ceiling)
	argv := append(append([]string(nil), prog.Run...), s.Args...)
	res, err := r.exec(ctx, argv, prog.Env, lim, s.Stdin, s.Stdout, r.stderr)
	if err != nil {
		return canceled(err)
	}
	return verdictOf(res)
}

// sandbox returns the job's sandbox: one of the Pool's, or one built now
// in a new work directory under tmp. Its Close removes the directory.
func (s Spec) sandbox(tmp string) (*sandbox.Sandbox, error) {
	if s.Pool != nil {
		return s.Pool.Get()
	}
	// /tmp and /dev/shm are bounded by the memory cgroup, or, without
	// one, by their size: the most the compile or the program may have.
	size := Limits(s.Limits, s.Ceiling).Memory
	if len(s.Language.Compile) > 0 {
		size = max(size, CompileLimits.Memory)
	}
	return sandbox.StartTemp(tmp, sandbox.Options{TmpSize: size})
}

// verdictOf is the verdict of a program that ran and ended as res.
func verdictOf(res sandbox.Result) proto.Verdict {
	v := proto.Verdict{
		Status:     res.Code,
		Signal:     res.Signal,
		WallMS:     res.Wall.Milliseconds(),
		CPUMS:      res.CPU.Milliseconds(),
		PeakMemory: res.PeakMemory,
		Stdout:     res.Stdout,
		Stderr:     res.Stderr,
		Detail:     res.Detail,
	}
	switch res.Outcome {
	case sandbox.Exited:
		v.Verdict = proto.VerdictOK
		if res.Code != 0 {
			v.Verdict = proto.VerdictRuntimeError
			v.Detail = fmt.Sprintf("exit status %d", res.Code)
		}
	case sandbox.Signaled:
		v.Verdict, v.Status = proto.VerdictRuntimeError, -1
		v.Detail = "killed by " + signalName(res.Signal)
	case sandbox.TimeLimit:
		v.Verdict, v.Status = proto.VerdictTimeLimit, -1
	case sandbox.MemoryLimit:
		v.Verdict, v.Status = proto.VerdictMemoryLimit, -1
	case sandbox.OutputLimit:
		v.Verdict, v.Status = proto.VerdictOutputLimit, -1
	default:
		v.Verdict, v.Status = proto.VerdictSandboxError, -1
	}
	return v
}

// ExitOf is the Exit that follows v: the program's status (or the signal
// that killed it) for OK and RUNTIME_ERROR, the verdict's proto.Exit* code
// for the others.
func ExitOf(v proto.Verdict) proto.Exit {
	switch v.Verdict {
	case proto.VerdictOK, proto.VerdictRuntimeError:
		if v.Signal != 0 {
			return proto.Exit{Signal: v.Signal}
		}
		if v.Status < 0 || v.Status > 255 {
			return proto.Exit{Code: 255}
		}
		return proto.Exit{Code: v.Status}
	case proto.VerdictCompileError:
		return proto.Exit{Code: proto.ExitCompileError}
	case proto.VerdictTimeLimit:
		return proto.Exit{Code: proto.ExitTimeLimit}
	case proto.VerdictMemoryLimit:
		return proto.Exit{Code: proto.ExitMemoryLimit}
	case proto.VerdictOutputLimit:
		return proto.Exit{Code: proto.ExitOutputLimit}
	}
	return proto.Exit{Code: proto.ExitSandboxError}
}

func sandboxError(detail string) proto.Verdict {
	return proto.Verdict{Verdict: proto.VerdictSandboxError, Detail: detail, Status: -1}
}

func canceled(err error) proto.Verdict {
	return sandboxError("canceled: " + err.Error())
}

func compileError(res sandbox.Result, detail string) proto.Verdict {
	return proto.Verdict{
		Verdict:    proto.VerdictCompileError,
		Detail:     detail,
		Status:     -1,
		WallMS:     res.Wall.Milliseconds(),
		CPUMS:      res.CPU.Milliseconds(),
		PeakMemory: res.PeakMemory,
		Stderr:     res.Stdout + res.Stderr, // the compiler's, sent to stderr
	}
}

// signalName is "SIGSEGV", or "signal N" for one without a name.
func signalName(n int) string {
	if s := unix.SignalName(syscall.Signal(n)); s != "" {
		return s
	}
	return fmt.Sprintf("signal %d", n)
}

// runner runs the commands of one job, one after the other, in its
// sandbox (the compile and the program share it and its work directory),
// or, unsafe, directly in its work directory.
type runner struct {
	s         Spec
	sb        *sandbox.Sandbox
	unsafeDir string
	stderr    io.Writer
}

// writeSource writes the program's source in the work directory.
func (r *runner) writeSource(name string, src []byte) error {
	if r.sb != nil {
		return r.sb.WriteFile(name, src, 0o644)
	}
	return os.WriteFile(filepath.Join(r.unsafeDir, name), src, 0o644)
}

// exec runs argv with env added to the environment. Its error is ctx's
// when ctx ended first.
func (r *runner) exec(ctx context.Context, argv, env []string, lim sandbox.Limits, stdin io.Reader, stdout, stderr io.Writer) (sandbox.Result, error) {
	if r.sb == nil {
		in, stop, err := stdinPipe(stdin)
		if err != nil {
			return sandbox.Result{Outcome: sandbox.SandboxError, Code: -1, Detail: err.Error()}, nil
		}
		defer stop()
		all := append(append([]string(nil), sandbox.DefaultEnv...), env...)
		return runUnsafe(ctx, r.unsafeDir, argv, all, lim, in, stdout, stderr)
	}
	res, err := r.sb.Exec(ctx, sandbox.Command{Argv: argv, Env: env, Stdin: stdin, Stdout: stdout, Stderr: stderr, Limits: lim})
	if err != nil && ctx.Err() == nil {
		// Misuse of the sandbox: ours, but the user sees a sandbox error.
		return sandbox.Result{Outcome: sandbox.SandboxError, Code: -1, Detail: err.Error()}, nil
	}
	return res, err
}

// stdinPipe returns the command's stdin: the read end of a pipe fed from
// r by a goroutine (so that the command gets a file, and no copy of
// exec's holds the command's end once it ended), or nil for none. stop
// closes the read end, which fails the copy's next write; call it once
// the command ended.
func stdinPipe(r io.Reader) (*os.File, func(), error) {
	if r == nil {
		return nil, func() {}, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("job: stdin pipe: %w", err)
	}
	go func() {
		_, _ = io.Copy(pw, r)
		_ = pw.Close()
	}()
	return pr, func() { _ = pr.Close() }, nil
}

// lockedWriter serialises writes to w (the compiler's stdout and stderr
// both go to the client's stderr); nil w discards.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w == nil {
		return len(p), nil
	}
	return l.w.Write(p)
}
