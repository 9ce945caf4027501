package sandbox

import (
	"fmt"
	"time"
)

// Outcome says how a sandboxed command ended. The set is closed: the job
// runner maps each value to one verdict.
type Outcome int

const (
	// Exited: the command exited by itself; Result.Code holds its status.
	Exited Outcome = iota
	// Signaled: the command was killed by a signal it did not get from a
	// limit (SIGSEGV, SIGABRT, a kill of its own...); Result.Signal holds it.
	Signaled
	// TimeLimit: the wall-clock or the CPU time limit was reached and the
	// whole job was killed.
	TimeLimit
	// MemoryLimit: the memory cgroup ran out and the kernel killed a process
	// of the job (only reported when a cgroup is in use; under rlimits a
	// failed allocation is the program's own failure).
	MemoryLimit
	// OutputLimit: stdout or stderr went beyond Limits.Output; what came
	// before the limit was passed on and the job was killed.
	OutputLimit
	// SandboxError: the sandbox could not be built or started; Detail says
	// why and how to fix it. The command did not run.
	SandboxError
)

var outcomeNames = [...]string{"exited", "signaled", "time limit", "memory limit", "output limit", "sandbox error"}

// String returns a lower-case name ("time limit").
func (o Outcome) String() string {
	if o < 0 || int(o) >= len(outcomeNames) {
		return fmt.Sprintf("outcome(%d)", int(o))
	}
	return outcomeNames[o]
}

// Result is how one Run ended and what it used.
type Result struct {
	Outcome Outcome
	// Code is the exit status for Exited (0..255), -1 otherwise.
	Code int
	// Signal is the signal number for Signaled (and for a limit when the
	// job ended by a signal), 0 otherwise. bubblewrap reports a command
	// killed by signal N as status 128+N, as shells do: an exit(128+N) of
	// the program itself reads as Signaled N too.
	Signal int
	// Wall is the time from start to the end of the last process.
	Wall time.Duration
	// CPU is user plus system time of the job's processes: the cgroup's
	// account when it has one, else what times(1) in the sandbox says of
	// the command and the processes it waited for (0 when the job was
	// killed).
	CPU time.Duration
	// PeakMemory is the memory cgroup's peak usage (the sandbox's init and
	// shell included); 0 without a cgroup, where nothing outside the
	// sandbox sees the job's processes' rusage.
	PeakMemory int64
	// Stdout and Stderr count the bytes passed to Spec.Stdout and
	// Spec.Stderr.
	Stdout, Stderr int64
	// Detail explains the outcome to the user ("wall time 3s exceeded",
	// "bwrap: ..."); empty for Exited and Signaled.
	Detail string
}
