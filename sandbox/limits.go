package sandbox

import (
	"fmt"
	"strings"
	"time"
)

// Default limits, used for every zero field of Limits.
const (
	DefaultWall     = 3 * time.Minute
	DefaultMemory   = 512 << 20
	DefaultProcs    = 64
	DefaultOutput   = 16 << 20
	DefaultFileSize = 64 << 20
)

// Limits bound one Run. A zero field takes its default; the CPU limit
// defaults to the wall limit.
type Limits struct {
	// Wall is the wall-clock limit: a timer kills the whole job.
	Wall time.Duration
	// CPU is RLIMIT_CPU, rounded up to whole seconds: each process gets
	// SIGXCPU there and SIGKILL a second later. With a cgroup that
	// accounts CPU it also bounds the sum over the job's processes
	// (checked every 100 ms); without one, only Wall bounds the sum.
	CPU time.Duration
	// Memory is the memory cgroup's limit (swap included) when a cgroup
	// can be made, else RLIMIT_AS of each process. Address space is far
	// more than memory for some runtimes: the JVM reserves gigabytes, so
	// the job runner must pass -Xmx (and a larger Memory, or a cgroup)
	// for Java.
	Memory int64
	// Procs is the pids cgroup's limit, else RLIMIT_NPROC (see the package
	// documentation for how that one counts).
	Procs int
	// Output bounds each of stdout and stderr in bytes; beyond it the job
	// is killed with OutputLimit, and what came before is kept.
	Output int64
	// FileSize is RLIMIT_FSIZE: no file can be written beyond it.
	FileSize int64
}

// withDefaults returns l with every zero (or negative) field set to its
// default.
func (l Limits) withDefaults() Limits {
	if l.Wall <= 0 {
		l.Wall = DefaultWall
	}
	if l.CPU <= 0 {
		l.CPU = l.Wall
	}
	if l.Memory <= 0 {
		l.Memory = DefaultMemory
	}
	if l.Procs <= 0 {
		l.Procs = DefaultProcs
	}
	if l.Output <= 0 {
		l.Output = DefaultOutput
	}
	if l.FileSize <= 0 {
		l.FileSize = DefaultFileSize
	}
	return l
}

// cpuSeconds is the CPU limit in whole seconds, rounded up, at least 1.
func (l Limits) cpuSeconds() uint64 {
	s := uint64((l.CPU + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

// rlimit is one resource limit to set on the job, as the sandbox's shell
// sets it: ulimit's option for it and the bytes (or seconds, or
// processes) in one unit of ulimit's value.
type rlimit struct {
	opt      byte
	unit     uint64
	cur, max uint64
}

// rlimits lists the limits set on each command, inherited by everything
// it starts. With a cgroup, memory and processes are the cgroup's business
// and only CPU and file size are rlimits.
func (l Limits) rlimits(cgroup bool) []rlimit {
	cpu := l.cpuSeconds()
	rl := []rlimit{
		// SIGXCPU at the soft limit, SIGKILL one second later.
		{'t', 1, cpu, cpu + 1},
		{'f', 512, uint64(l.FileSize), uint64(l.FileSize)},
		// No core files in the work directory.
		{'c', 512, 0, 0},
	}
	if !cgroup {
		rl = append(rl,
			rlimit{'v', 1024, uint64(l.Memory), uint64(l.Memory)},
			rlimit{'p', 1, uint64(l.Procs), uint64(l.Procs)},
		)
	}
	return rl
}

// maxUlimit bounds a value given to ulimit, in bytes (or seconds...):
// dash multiplies the value by the unit without a check for overflow.
const maxUlimit = 1 << 62

// ulimits returns the sh commands, joined by &&, that set rl on the shell
// that runs them, soft and hard limits both (the sandbox's shell runs
// them in the subshell that then execs the command: everything it starts
// inherits them, and nothing of it runs before they are set). Values are
// rounded down to ulimit's units: file sizes to 512-byte blocks, address
// space to KiB.
//
// Go cannot run code between fork and exec, so rlimits cannot be set in
// the child the usual way, and setting them on reshd itself would bound
// reshd. prlimit(2) on the child from outside needs CAP_SYS_RESOURCE once
// the child is nobody and reshd root, which containers often lack. The
// shell's builtin does it without a program of its own to start (prlimit(1)
// cost an exec per command).
func ulimits(rl []rlimit) string {
	var b strings.Builder
	for i, r := range rl {
		if i > 0 {
			b.WriteString(" && ")
		}
		cur, hi := min(r.cur, maxUlimit)/r.unit, min(r.max, maxUlimit)/r.unit
		if cur == hi {
			// Neither -S nor -H: both.
			fmt.Fprintf(&b, "ulimit -%c %d", r.opt, cur)
			continue
		}
		// The soft limit first, so that it is never above the hard one.
		fmt.Fprintf(&b, "ulimit -S%c %d && ulimit -H%c %d", r.opt, cur, r.opt, hi)
	}
	return b.String()
}
