package sandbox

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The benchmarks report, besides the time per job, the CPU it cost:
// cpu-ms/job is the user+system time of the processes the job started
// (bwrap, the sandbox's shell, the command, as reaped children), and
// self-ms/job is this process's own (pipes, cgroup files, goroutines).
// Kernel work done on the job's behalf in kernel threads (a network
// namespace's teardown runs in a kworker) is in neither.

// cpuMeter measures the CPU used from its start until report.
type cpuMeter struct{ children, self time.Duration }

func rusage(who int) time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(who, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuMeter {
	return cpuMeter{rusage(unix.RUSAGE_CHILDREN), rusage(unix.RUSAGE_SELF)}
}

// report adds the CPU per job since m to b's results, for n jobs.
func (m cpuMeter) report(b *testing.B, n int) {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(n) }
	b.ReportMetric(ms(rusage(unix.RUSAGE_CHILDREN)-m.children), "cpu-ms/job")
	b.ReportMetric(ms(rusage(unix.RUSAGE_SELF)-m.self), "self-ms/job")
}

// BenchmarkRun measures a sandboxed `true`: the sandbox's own cost per job.
func BenchmarkRun(b *testing.B) {
	if err := Available(); err != nil {
		b.Fatal(err)
	}
	dir := workDir(b)
	m := startCPU()
	for b.Loop() {
		res, err := Run(context.Background(), Spec{Dir: dir, Argv: []string{"true"}})
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
	m := startCPU()
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
func BenchmarkExecBaseline(b *testing.B) {
	m := startCPU()
	for b.Loop() {
		if err := exec.Command("true").Run(); err != nil {
			b.Fatal(err)
		}
	}
	m.report(b, b.N)
}
