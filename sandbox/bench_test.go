package sandbox

import (
	"context"
	"encoding/binary"
	"os/exec"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The benchmarks report, besides the time per job, the CPU it cost:
// cpu-ms/job is the user+system time of every process the job started
// (bwrap, the sandbox's shell, the command), and self-ms/job is this
// process's own (pipes, cgroup files, goroutines). Kernel work done on
// the job's behalf in kernel threads (a network namespace's teardown runs
// in a kworker) is in neither.
//
// getrusage(RUSAGE_CHILDREN) cannot count the processes in the sandbox:
// when the sandbox's init is killed (Close), the kernel reaps what is
// left in the namespace without adding it to anyone's account. So the
// processes are counted with perf's task clock, inherited by every
// process the benchmark's thread starts (the benchmark runs locked to its
// thread, and Run starts bwrap from the calling thread), less that
// thread's own time.

// cpuMeter measures the CPU used from its start until report.
type cpuMeter struct {
	tree         int // perf task clock of this thread and its descendants; -1 if perf is not allowed
	thread, self time.Duration
}

func rusage(who int) time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(who, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startCPU starts measuring; the caller must be locked to its thread
// until report.
func startCPU(b *testing.B) cpuMeter {
	attr := unix.PerfEventAttr{
		Type:   unix.PERF_TYPE_SOFTWARE,
		Config: unix.PERF_COUNT_SW_TASK_CLOCK,
		Size:   uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
		Bits:   unix.PerfBitInherit,
	}
	fd, err := unix.PerfEventOpen(&attr, 0, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		b.Logf("no cpu-ms/job: perf_event_open: %v", err)
		fd = -1
	}
	return cpuMeter{tree: fd, thread: rusage(unix.RUSAGE_THREAD), self: rusage(unix.RUSAGE_SELF)}
}

// report adds the CPU per job since m to b's results, for n jobs.
func (m cpuMeter) report(b *testing.B, n int) {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(n) }
	if m.tree >= 0 {
		defer unix.Close(m.tree)
		var buf [8]byte
		if k, err := unix.Read(m.tree, buf[:]); err == nil && k == 8 {
			tree := time.Duration(binary.NativeEndian.Uint64(buf[:]))
			b.ReportMetric(ms(tree-(rusage(unix.RUSAGE_THREAD)-m.thread)), "cpu-ms/job")
		}
	}
	b.ReportMetric(ms(rusage(unix.RUSAGE_SELF)-m.self), "self-ms/job")
}

// BenchmarkRun measures a sandboxed `true`: the sandbox's own cost per job.
func BenchmarkRun(b *testing.B) { benchmarkRun(b, "true") }

// BenchmarkRunPython is a short Python program, as the jobs of the
// cluster's benchmark: BenchmarkExecPythonBaseline is the same started
// directly.
func BenchmarkRunPython(b *testing.B) { benchmarkRun(b, "/usr/bin/python3", "-c", "pass") }

func benchmarkRun(b *testing.B, argv ...string) {
	if err := Available(); err != nil {
		b.Fatal(err)
	}
	dir := workDir(b)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	m := startCPU(b)
	for b.Loop() {
		res, err := Run(context.Background(), Spec{Dir: dir, Argv: argv})
		if err != nil || res.Outcome != Exited || res.Code != 0 {
			b.Fatal(res, err)
		}
	}
	m.report(b, b.N)
}

// BenchmarkRunTwoCommands is a job of two commands (a compile and its
// program) in one sandbox: the cost of a sandbox plus two commands.
func BenchmarkRunTwoCommands(b *testing.B) {
	if err := Available(); err != nil {
		b.Fatal(err)
	}
	base := poolBase(b)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	m := startCPU(b)
	for b.Loop() {
		sb, err := StartTemp(base, Options{})
		if err != nil {
			b.Fatal(err)
		}
		for range 2 {
			res, err := sb.Exec(context.Background(), Command{Argv: []string{"true"}})
			if err != nil || res.Outcome != Exited || res.Code != 0 {
				b.Fatal(res, err)
			}
		}
		sb.Close()
	}
	m.report(b, b.N)
}

// BenchmarkExecBaseline is the same `true` started directly.
func BenchmarkExecBaseline(b *testing.B) { benchmarkExec(b, "true") }

// BenchmarkExecPythonBaseline is BenchmarkRunPython's program started
// directly.
func BenchmarkExecPythonBaseline(b *testing.B) { benchmarkExec(b, "/usr/bin/python3", "-c", "pass") }

func benchmarkExec(b *testing.B, argv ...string) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	m := startCPU(b)
	for b.Loop() {
		if err := exec.Command(argv[0], argv[1:]...).Run(); err != nil {
			b.Fatal(err)
		}
	}
	m.report(b, b.N)
}
