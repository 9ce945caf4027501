package job

import (
	"time"

	"resh/proto"
	"resh/sandbox"
)

// Limits as data: what a job gets when it asks for nothing (Defaults), the
// most it may ask for (the executor's ceiling, DefaultCeiling unless the
// executor configures its own), and what a compile gets (CompileLimits).

// Defaults are a job's limits where proto.JobLimits leaves a field zero:
// wall time 3 min, CPU time as much as the wall time, memory 512 MiB, 64
// processes, 16 MiB of output per stream, files of at most 64 MiB.
var Defaults = sandbox.Limits{
	Wall:     sandbox.DefaultWall,
	CPU:      sandbox.DefaultWall,
	Memory:   sandbox.DefaultMemory,
	Procs:    sandbox.DefaultProcs,
	Output:   sandbox.DefaultOutput,
	FileSize: sandbox.DefaultFileSize,
}

// CeilingFactor is how many times the defaults DefaultCeiling allows.
const CeilingFactor = 4

// DefaultCeiling is the executor's ceiling when it sets none: every
// default times CeilingFactor (12 min of wall and CPU time, 2 GiB, 256
// processes, 64 MiB of output per stream, 256 MiB files).
var DefaultCeiling = sandbox.Limits{
	Wall:     CeilingFactor * Defaults.Wall,
	CPU:      CeilingFactor * Defaults.CPU,
	Memory:   CeilingFactor * Defaults.Memory,
	Procs:    CeilingFactor * Defaults.Procs,
	Output:   CeilingFactor * Defaults.Output,
	FileSize: CeilingFactor * Defaults.FileSize,
}

// CompileLimits bound a compile, whatever the job asked: 30 s of wall
// time, 1 GiB (compilers and javac need more than programs), 64
// processes, 1 MiB of compiler messages per stream, 256 MiB files.
var CompileLimits = sandbox.Limits{
	Wall:     30 * time.Second,
	CPU:      30 * time.Second,
	Memory:   1 << 30,
	Procs:    64,
	Output:   1 << 20,
	FileSize: 256 << 20,
}

// Limits returns the limits of a job that asked for asked on an executor
// whose ceiling is ceiling: each zero (or negative) field of asked takes
// its default, then each is capped by the ceiling, whose zero fields are
// DefaultCeiling's (its CPU time, its wall time if set). A ceiling below a default caps the default too. The
// file size is not asked for: it is the default, capped.
func Limits(asked proto.JobLimits, ceiling sandbox.Limits) sandbox.Limits {
	if ceiling.CPU <= 0 && ceiling.Wall > 0 {
		ceiling.CPU = ceiling.Wall
	}
	c := orDefault(ceiling, DefaultCeiling)
	l := Defaults
	if asked.WallMS > 0 {
		l.Wall = time.Duration(asked.WallMS) * time.Millisecond
		l.CPU = l.Wall // as the sandbox's: CPU defaults to the wall time
	}
	if asked.CPUMS > 0 {
		l.CPU = time.Duration(asked.CPUMS) * time.Millisecond
	}
	if asked.Memory > 0 {
		l.Memory = asked.Memory
	}
	if asked.Procs > 0 {
		l.Procs = asked.Procs
	}
	if asked.Output > 0 {
		l.Output = asked.Output
	}
	l.Wall = min(l.Wall, c.Wall)
	l.CPU = min(l.CPU, c.CPU)
	l.Memory = min(l.Memory, c.Memory)
	l.Procs = min(l.Procs, c.Procs)
	l.Output = min(l.Output, c.Output)
	l.FileSize = min(l.FileSize, c.FileSize)
	return l
}

// orDefault returns l with each zero (or negative) field taken from d.
func orDefault(l, d sandbox.Limits) sandbox.Limits {
	if l.Wall <= 0 {
		l.Wall = d.Wall
	}
	if l.CPU <= 0 {
		l.CPU = d.CPU
	}
	if l.Memory <= 0 {
		l.Memory = d.Memory
	}
	if l.Procs <= 0 {
		l.Procs = d.Procs
	}
	if l.Output <= 0 {
		l.Output = d.Output
	}
	if l.FileSize <= 0 {
		l.FileSize = d.FileSize
	}
	return l
}
