//go:build linux

package tests

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"resh/auth"
)

// These benchmarks measure the master against a standalone reshd, each
// beside its same-run baseline (cluster/spec.md; issue #11, "What to
// measure"): run them with
//
//	go test -run XXX -bench 'Master|Join|Balance' -benchtime 5x ./tests

// children returns pid and its child processes (a master's -local
// executors), from /proc/PID/task/*/children.
func children(b testing.TB, pid int) []int {
	pids := []int{pid}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		s, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, w := range strings.Fields(string(s)) {
			if c, err := strconv.Atoi(w); err == nil {
				pids = append(pids, c)
			}
		}
	}
	return pids
}

// masterOr starts what a sub-benchmark measures: a standalone reshd, or a
// master with two local executors; flags go to either.
func masterOr(b *testing.B, which string, flags ...string) *daemon {
	b.Helper()
	if which == "standalone" {
		return startReshd(b, flags...)
	}
	return startMaster(b, append([]string{"-local", "2"}, flags...), "local-1", "local-2")
}

// BenchmarkMasterRoundTrip runs `true` through a master with two local
// executors against a standalone reshd: the whole round trip of a command,
// connection setup included. Aim: master at most 1.5 × standalone.
func BenchmarkMasterRoundTrip(b *testing.B) {
	for _, which := range []string{"standalone", "master"} {
		b.Run(which, func(b *testing.B) {
			d := masterOr(b, which)
			m := newCPUMeter(b, children(b, d.cmd.Process.Pid)...)
			b.ResetTimer()
			for range b.N {
				m.run(b, reshCommand(context.Background(), d.args(d.addr, "true")...))
			}
			b.StopTimer()
			m.report(b)
		})
	}
}

// BenchmarkMasterLcat sends a 256 MiB client file into a remote pipeline,
// `resh HOST 'lcat big | wc -c'`, through a master with two local executors
// against a standalone reshd (MB/s). Aim: master at least 0.7 × standalone.
// cpu-s/op counts resh, reshd and, for the master, its executors.
func BenchmarkMasterLcat(b *testing.B) {
	const size = 256 << 20
	dir := b.TempDir()
	bigFile(b, dir, size)
	for _, which := range []string{"standalone", "master"} {
		b.Run(which, func(b *testing.B) {
			d := masterOr(b, which)
			b.SetBytes(size)
			m := newCPUMeter(b, children(b, d.cmd.Process.Pid)...)
			b.ResetTimer()
			for range b.N {
				cmd := reshCommand(context.Background(), d.args(d.addr, "lcat big | wc -c")...)
				cmd.Dir = dir
				var out strings.Builder
				cmd.Stdout = &out
				m.run(b, cmd)
				if strings.TrimSpace(out.String()) != strconv.Itoa(size) {
					b.Fatalf("wc -c said %q", out.String())
				}
			}
			b.StopTimer()
			m.report(b)
		})
	}
}

// BenchmarkMasterIdleSessionMemory reports what a master holds per relayed
// idle session (`resh HOST 'echo up; exec sleep 120' < /dev/null`) against
// a standalone reshd per session: resident memory (RSS-B/session), OS
// threads and goroutines per session, each the growth from 40 sessions to
// 80 divided by 40 (the first 40 also pay what grows once, shown apart as
// first40-RSS-B/session). The master's two executors are started by hand
// (-max-tasks 50) so that their logs are apart from the master's
// scheduler trace; their own growth is exec-RSS-B/session.
func BenchmarkMasterIdleSessionMemory(b *testing.B) {
	for _, which := range []string{"standalone", "master"} {
		b.Run(which, func(b *testing.B) {
			for range b.N {
				benchIdleRelayed(b, which)
			}
		})
	}
}

func benchIdleRelayed(b *testing.B, which string) {
	const n = 40
	env := []string{"GODEBUG=schedtrace=200,scheddetail=1"}
	var (
		d     *daemon
		execs []*daemon
	)
	if which == "standalone" {
		d = startReshdAt(b, "127.0.0.1:0", env)
	} else {
		d = startReshdAt(b, "127.0.0.1:0", env, "-master")
		for _, name := range []string{"x1", "x2"} {
			execs = append(execs, startExecutor(b, d, name, "-max-tasks", "50"))
		}
	}
	pid := d.cmd.Process.Pid
	execRSS := func() int64 {
		var sum int64
		for _, x := range execs {
			sum += procStatus(b, x.cmd.Process.Pid)["VmRSS"]
		}
		return sum
	}
	var cmds []*exec.Cmd
	defer func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}()
	open := func() (map[string]int64, []string, int64) {
		for range n {
			cmd := reshCommand(context.Background(), d.args(d.addr, "echo up; exec sleep 120")...)
			out, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			cmds = append(cmds, cmd)
			buf := make([]byte, 3)
			if _, err := io.ReadFull(out, buf); err != nil {
				b.Fatal(err)
			}
		}
		time.Sleep(3 * time.Second) // let the sessions go idle (buffers are released after heartbeats)
		return procStatus(b, pid), d.goroutines(b), execRSS()
	}
	time.Sleep(time.Second) // let reshd settle after the first contact
	before, eBefore := procStatus(b, pid), execRSS()
	first, gFirst, eFirst := open()
	second, gSecond, eSecond := open()
	b.ReportMetric(float64(second["VmRSS"]-first["VmRSS"])/n, "RSS-B/session")
	b.ReportMetric(float64(len(gSecond)-len(gFirst))/n, "goroutines/session")
	b.ReportMetric(float64(second["Threads"]-first["Threads"])/n, "threads/session")
	b.ReportMetric(float64(first["VmRSS"]-before["VmRSS"])/n, "first40-RSS-B/session")
	if execs != nil {
		b.ReportMetric(float64(eSecond-eFirst)/n, "exec-RSS-B/session")
		b.ReportMetric(float64(eFirst-eBefore)/n, "exec-first40-RSS-B/session")
	}
	stopReshd(b, d)
}

// BenchmarkJoinToFirstTask times an executor from the start of `reshd
// -join` to the end of the first session placed on it (`resh -on NAME HOST
// true`): join-s/op is the part until the master logs it joined. Its key
// is made and listed beforehand, outside the timing.
func BenchmarkJoinToFirstTask(b *testing.B) {
	m := startMaster(b, nil)
	var joins time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		name := fmt.Sprintf("j%d", i)
		home := b.TempDir()
		key, _, err := auth.LoadOrCreateIdentity(filepath.Join(home, auth.HostKeyFile))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := auth.AddAuthorizedKey(filepath.Join(os.Getenv("RESH_HOME"), auth.ExecutorsFile), auth.PublicKey(key), "bench executor "+name); err != nil {
			b.Fatal(err)
		}
		argv := []string{filepath.Join(bin, "reshd"), "-join", m.addr, "-name", name}
		if m.insecure {
			argv = append(argv, "-insecure")
		}
		b.StartTimer()
		start := time.Now()
		x, _ := startLogged(b, argv, []string{"RESH_HOME=" + home, "HOME=" + home}, joiningRE)
		m.waitJoined(b, name)
		joins += time.Since(start)
		out, err := reshCommand(context.Background(), append([]string{"-on", name}, m.args(m.addr, "echo first")...)...).CombinedOutput()
		if err != nil || string(out) != "first\n" {
			b.Fatalf("first task on %s: %v: %s", name, err, out)
		}
		b.StopTimer()
		x.stop()
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(joins.Seconds()/float64(b.N), "join-s/op")
}

// BenchmarkBalance runs 40 sessions of `sleep 1` at once through a master
// with 3 executors of -max-tasks 2: no executor may run more than 2 at any
// moment (max-per-executor, from the executors' logs), all 3 must be used,
// and the total time is compared with the ideal 40/6 s (vs-ideal; aim
// within 1.10). ideal-waves is ceil(40/6)/(40/6): what running in whole
// waves of 6 costs at best.
func BenchmarkBalance(b *testing.B) {
	const (
		sessions = 40
		perExec  = 2
	)
	m := startMaster(b, nil)
	names := []string{"b1", "b2", "b3"}
	var execs []*daemon
	for _, name := range names {
		execs = append(execs, startExecutor(b, m, name, "-max-tasks", strconv.Itoa(perExec)))
	}
	ideal := time.Duration(float64(sessions) / float64(perExec*len(names)) * float64(time.Second))
	var total time.Duration
	worst := 0
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		marks := make([]int, len(execs))
		for i, x := range execs {
			x.logMu.Lock()
			marks[i] = len(x.log)
			x.logMu.Unlock()
		}
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan string, sessions)
		for range sessions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := reshCommand(context.Background(), m.args(m.addr, "sleep 1; echo done")...).CombinedOutput()
				if err != nil || string(out) != "done\n" {
					errs <- fmt.Sprintf("%v: %q", err, out)
				}
			}()
		}
		wg.Wait()
		took := time.Since(start)
		b.StopTimer()
		total += took
		close(errs)
		for e := range errs {
			b.Errorf("a session failed: %s", e)
		}
		used, ran := 0, 0
		var (
			per               []string
			firstWait, handed time.Duration
		)
		for i, x := range execs {
			most, count, fw, h := balanceConcurrency(x, marks[i], perExec, start)
			firstWait += fw
			handed += h
			worst = max(worst, most)
			ran += count
			if count > 0 {
				used++
			}
			if most > perExec {
				b.Errorf("%s ran %d sessions at once, above its -max-tasks %d", names[i], most, perExec)
			}
			per = append(per, fmt.Sprintf("%s: %d sessions, at most %d at once", names[i], count, most))
		}
		if used != len(names) || ran != sessions {
			b.Errorf("%d executors used, %d sessions run, want %d and %d", used, ran, len(names), sessions)
		}
		handoffs := sessions - perExec*len(names)
		b.Logf("%d sessions in %v (ideal %v, ratio %.3f); %s; a slot waited %v on average for its first session, %v between sessions",
			sessions, took.Round(time.Millisecond), ideal, took.Seconds()/ideal.Seconds(), strings.Join(per, "; "),
			(firstWait / time.Duration(perExec*len(names))).Round(time.Millisecond), (handed / time.Duration(handoffs)).Round(time.Millisecond))
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(total.Seconds()/float64(b.N), "total-s/op")
	b.ReportMetric(total.Seconds()/float64(b.N)/ideal.Seconds(), "vs-ideal")
	waves := (sessions + perExec*len(names) - 1) / (perExec * len(names))
	b.ReportMetric(float64(waves)/ideal.Seconds(), "ideal-waves")
	b.ReportMetric(float64(worst), "max-per-executor")
}

// balanceConcurrency reads executor x's log from line from on: the most
// sessions it ran at once, how many it ran (a session counts from its
// "session started" line to its "session ended" line), and the time its
// slots stood free before each session started: from start for the first
// perExec sessions (firstWait), from the end of a previous session for the
// others (handoffs).
func balanceConcurrency(x *daemon, from, perExec int, start time.Time) (most, count int, firstWait, handoffs time.Duration) {
	x.logMu.Lock()
	defer x.logMu.Unlock()
	now := 0
	free := make([]time.Time, perExec) // when each free slot became free
	for i := range free {
		free[i] = start
	}
	for _, l := range x.log[from:] {
		at := logTime(l)
		switch {
		case strings.Contains(l, `msg="reshd: session started"`):
			now++
			count++
			most = max(most, now)
			if len(free) > 0 && !at.IsZero() {
				if count <= perExec {
					firstWait += at.Sub(free[0])
				} else {
					handoffs += at.Sub(free[0])
				}
				free = free[1:]
			}
		case strings.Contains(l, `msg="reshd: session ended"`):
			now--
			free = append(free, at)
		}
	}
	return most, count, firstWait, handoffs
}

// logTime is the time= of a log line, or zero.
func logTime(l string) time.Time {
	v, ok := strings.CutPrefix(l, "time=")
	if !ok {
		return time.Time{}
	}
	v, _, _ = strings.Cut(v, " ")
	t, _ := time.Parse(time.RFC3339Nano, v)
	return t
}
