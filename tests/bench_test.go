package tests

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"resh/mitm"
)

// These benchmarks compare resh with OpenSSH on loopback when sshd is
// installed (the ssh sub-benchmarks are skipped otherwise): they start a
// private sshd on a free port with a throwaway key.

// sshd starts a private OpenSSH server and returns the ssh arguments that
// reach it, or skips the benchmark.
func sshd(b *testing.B) []string {
	b.Helper()
	bin, err := exec.LookPath("sshd")
	if err != nil {
		bin = "/usr/sbin/sshd"
	}
	if _, err := os.Stat(bin); err != nil {
		b.Skip("sshd is not installed")
	}
	dir := b.TempDir()
	key := filepath.Join(dir, "id")
	host := filepath.Join(dir, "host")
	for _, k := range []string{key, host} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k).CombinedOutput(); err != nil {
			b.Fatalf("ssh-keygen: %v %s", err, out)
		}
	}
	pub, _ := os.ReadFile(key + ".pub")
	auth := filepath.Join(dir, "authorized_keys")
	_ = os.WriteFile(auth, pub, 0o600)
	port := freePort(b)
	cfg := filepath.Join(dir, "sshd_config")
	_ = os.WriteFile(cfg, []byte(fmt.Sprintf("Port %d\nListenAddress 127.0.0.1\nHostKey %s\nAuthorizedKeysFile %s\nPidFile %s/pid\nStrictModes no\nPermitRootLogin yes\nUsePAM no\n",
		port, host, auth, dir)), 0o600)
	_ = os.MkdirAll("/run/sshd", 0o755)
	cmd := exec.Command(bin, "-D", "-e", "-f", cfg)
	if err := cmd.Start(); err != nil {
		b.Skipf("sshd: %v", err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	args := []string{"-q", "-i", key, "-p", strconv.Itoa(port), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "127.0.0.1"}
	// Wait until it answers.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if exec.Command("ssh", append(args, "true")...).Run() == nil {
			return args
		}
		if time.Now().After(deadline) {
			b.Skip("private sshd did not come up")
		}
	}
}

func freePort(b *testing.B) int {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	_, p, _ := strings.Cut(l.Addr().String(), ":")
	n, _ := strconv.Atoi(p)
	return n
}

// BenchmarkRoundTrip runs `true` remotely: the whole round trip of a
// command, connection setup included.
func BenchmarkRoundTrip(b *testing.B) {
	b.Run("resh", func(b *testing.B) {
		d := startReshd(b)
		for range b.N {
			if err := reshCommand(context.Background(), d.addr, "true").Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ssh", func(b *testing.B) {
		args := sshd(b)
		b.ResetTimer()
		for range b.N {
			if err := exec.Command("ssh", append(args, "true")...).Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// bigFile writes size bytes of text into dir/big and returns its path.
func bigFile(b *testing.B, dir string, size int) string {
	b.Helper()
	file := filepath.Join(dir, "big")
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	chunk := []byte(randomText(1<<20, 3))[:1<<20]
	for i := 0; i < size>>20; i++ {
		_, _ = f.Write(chunk)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return file
}

// cpuMeter adds up the CPU time of the commands a benchmark runs and of
// the daemons serving them.
type cpuMeter struct {
	pids  []int
	start time.Duration
	cmds  time.Duration
}

// procCPU is a live process's user and system CPU time (utime and stime in
// /proc/PID/stat, in clock ticks of 10 ms).
func procCPU(b *testing.B, pid int) time.Duration {
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(s[strings.LastIndexByte(string(s), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func newCPUMeter(b *testing.B, daemons ...int) *cpuMeter {
	m := &cpuMeter{pids: daemons}
	for _, p := range daemons {
		m.start += procCPU(b, p)
	}
	return m
}

// run runs cmd (its stdout discarded unless set) and counts its CPU time.
func (m *cpuMeter) run(b *testing.B, cmd *exec.Cmd) {
	b.Helper()
	if cmd.Stdout == nil {
		cmd.Stdout = io.Discard
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("%v: %v: %s", cmd.Args, err, stderr.String())
	}
	m.cmds += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

// report gives the CPU seconds per operation, all processes together.
func (m *cpuMeter) report(b *testing.B) {
	total := m.cmds - m.start
	for _, p := range m.pids {
		total += procCPU(b, p)
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "cpu-s/op")
}

// startMode starts reshd, with -insecure if insecure.
func startMode(b *testing.B, insecure bool) *daemon {
	if insecure {
		return startReshd(b, "-insecure")
	}
	return startReshd(b)
}

// BenchmarkLcat sends a client file into a remote pipeline: `resh HOST
// 'lcat big | wc -c'` against `ssh HOST wc -c < big`, and the local `wc -c
// < big` as the raw baseline. cpu-s/op counts every process (resh, reshd,
// the remote command; sshd is not counted for ssh: it forks per session).
func BenchmarkLcat(b *testing.B) {
	const size = 256 << 20
	dir := b.TempDir()
	file := bigFile(b, dir, size)
	b.Run("local-wc", func(b *testing.B) {
		b.SetBytes(size)
		m := newCPUMeter(b)
		for range b.N {
			cmd := exec.Command("sh", "-c", "wc -c < big")
			cmd.Dir = dir
			m.run(b, cmd)
		}
		m.report(b)
	})
	for _, mode := range []string{"resh", "resh-insecure"} {
		b.Run(mode, func(b *testing.B) {
			d := startMode(b, mode != "resh")
			b.SetBytes(size)
			m := newCPUMeter(b, d.cmd.Process.Pid)
			b.ResetTimer()
			for range b.N {
				cmd := reshCommand(context.Background(), d.args(d.addr, "lcat big | wc -c")...)
				cmd.Dir = dir
				m.run(b, cmd)
			}
			m.report(b)
		})
	}
	b.Run("ssh", func(b *testing.B) {
		args := sshd(b)
		b.SetBytes(size)
		m := newCPUMeter(b)
		b.ResetTimer()
		for range b.N {
			cmd := exec.Command("ssh", append(args, "wc", "-c")...)
			in, err := os.Open(file)
			if err != nil {
				b.Fatal(err)
			}
			cmd.Stdin = in
			m.run(b, cmd)
			in.Close()
		}
		m.report(b)
	})
}

// BenchmarkLtee writes a remote file's bytes into a client file: `resh HOST
// 'ltee out < big > /dev/null'` against `ssh HOST cat big > out`, and the
// local `cat big > out` as the raw baseline.
func BenchmarkLtee(b *testing.B) {
	const size = 256 << 20
	dir := b.TempDir()
	file := bigFile(b, dir, size)
	out := filepath.Join(dir, "out")
	b.Run("local-cat", func(b *testing.B) {
		b.SetBytes(size)
		m := newCPUMeter(b)
		for range b.N {
			m.run(b, exec.Command("sh", "-c", "cat "+file+" > "+out))
		}
		m.report(b)
	})
	for _, mode := range []string{"resh", "resh-insecure"} {
		b.Run(mode, func(b *testing.B) {
			d := startMode(b, mode != "resh")
			b.SetBytes(size)
			m := newCPUMeter(b, d.cmd.Process.Pid)
			b.ResetTimer()
			for range b.N {
				cmd := reshCommand(context.Background(), d.args(d.addr, "ltee out < "+file+" > /dev/null")...)
				cmd.Dir = dir
				m.run(b, cmd)
			}
			m.report(b)
		})
	}
	b.Run("ssh", func(b *testing.B) {
		args := sshd(b)
		b.SetBytes(size)
		m := newCPUMeter(b)
		b.ResetTimer()
		for range b.N {
			f, err := os.Create(out)
			if err != nil {
				b.Fatal(err)
			}
			cmd := exec.Command("ssh", append(args, "cat", file)...)
			cmd.Stdout = f
			m.run(b, cmd)
			f.Close()
		}
		m.report(b)
	})
}

// BenchmarkDamagedPath sends 20 MB with lcat through a proxy that corrupts
// 2e-5 or 1e-4 of the bytes in each direction (no resets), with TLS (the
// default) and with -insecure: the connection repairs the damage below TLS,
// so both keep one TCP connection (conns/op) and cost about the same.
func BenchmarkDamagedPath(b *testing.B) {
	const size = 20 << 20
	dir := b.TempDir()
	bigFile(b, dir, size)
	for _, rc := range []struct {
		name string
		rate float64
	}{{"2e-5", 2e-5}, {"1e-4", 1e-4}} {
		for _, mode := range []string{"tls", "insecure"} {
			b.Run(rc.name+"/"+mode, func(b *testing.B) {
				d := startMode(b, mode != "tls")
				damage := mitm.Faults{Corrupt: rc.rate}
				p, err := mitm.Start("127.0.0.1:0", mitm.Config{Target: d.addr, Up: damage, Down: damage, Seed: 17})
				if err != nil {
					b.Fatal(err)
				}
				defer p.Close()
				d.firstContact(b, p.Addr().String())
				before := p.Stats().Accepted
				b.SetBytes(size)
				m := newCPUMeter(b, d.cmd.Process.Pid)
				b.ResetTimer()
				for range b.N {
					cmd := reshCommand(context.Background(), d.args(p.Addr().String(), "lcat big | wc -c")...)
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
				st := p.Stats()
				b.ReportMetric(float64(st.Accepted-before)/float64(b.N), "conns/op")
				b.ReportMetric(float64(st.Up.Corrupt+st.Down.Corrupt)/float64(b.N), "corrupted/op")
			})
		}
	}
}

// BenchmarkIdleSessionMemory reports what reshd holds per idle session (a
// remote `sleep` waiting with nothing to say): its resident memory
// (reshd-RSS-B/session), its goroutines (goroutines/session, from the
// runtime's scheduler trace) and its OS threads (threads/session,
// /proc/PID/status). Each is the growth from 40 idle sessions to 80,
// divided by 40: the first 40 also pay what reshd grows once (the garbage
// collector's own structures, code paged in, buffer pools), shown apart as
// first40-RSS-B/session (the growth from no session to 40, divided by 40).
// The client's stdin is at its end (stdin=eof, `resh HOST cmd < /dev/null`),
// or open and silent (stdin=open), or so in a pseudo-terminal (tty, `resh
// -t`). With -v it logs what the goroutines wait on.
func BenchmarkIdleSessionMemory(b *testing.B) {
	for _, mode := range []string{"stdin=eof", "stdin=open", "tty"} {
		b.Run(mode, func(b *testing.B) { benchIdleSessions(b, mode) })
	}
}

func benchIdleSessions(b *testing.B, mode string) {
	const n = 40
	for range b.N {
		d := startReshdAt(b, "127.0.0.1:0", []string{"GODEBUG=schedtrace=200,scheddetail=1"})
		pid := d.cmd.Process.Pid
		var (
			cmds   []*exec.Cmd
			stdins []io.Closer
		)
		open := func() (map[string]int64, []string) {
			for range n {
				args := []string{d.addr, "echo up; exec sleep 120"}
				if mode == "tty" {
					args = append([]string{"-tt"}, args...)
				}
				cmd := exec.Command(filepath.Join(bin, "resh"), args...)
				if mode != "stdin=eof" {
					in, err := cmd.StdinPipe()
					if err != nil {
						b.Fatal(err)
					}
					stdins = append(stdins, in)
				}
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
			return procStatus(b, pid), d.goroutines(b)
		}
		time.Sleep(time.Second) // let reshd settle after the first contact
		before := procStatus(b, pid)
		first, gFirst := open()
		second, gSecond := open()
		b.ReportMetric(float64(second["VmRSS"]-first["VmRSS"])/n, "reshd-RSS-B/session")
		b.ReportMetric(float64(len(gSecond)-len(gFirst))/n, "goroutines/session")
		b.ReportMetric(float64(second["Threads"]-first["Threads"])/n, "threads/session")
		b.ReportMetric(float64(first["VmRSS"]-before["VmRSS"])/n, "first40-RSS-B/session")
		waits := map[string]int{}
		for _, w := range gSecond {
			waits[w]++
		}
		for _, w := range gFirst {
			waits[w]--
		}
		for w, k := range waits {
			if k == 0 {
				delete(waits, w)
			}
		}
		b.Logf("reshd's goroutines by what they wait on, for %d more sessions: %v", n, waits)
		for _, c := range stdins {
			_ = c.Close()
		}
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
		stopReshd(b, d)
	}
}

// procStatus returns a process's VmRSS (in bytes) and Threads from
// /proc/PID/status.
func procStatus(b testing.TB, pid int) map[string]int64 {
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	m := map[string]int64{}
	for _, line := range strings.Split(string(s), "\n") {
		k, v, _ := strings.Cut(line, ":")
		if k == "VmRSS" || k == "Threads" {
			f := strings.Fields(v)
			x, _ := strconv.ParseInt(f[0], 10, 64)
			if len(f) > 1 && f[1] == "kB" {
				x <<= 10
			}
			m[k] = x
		}
	}
	if len(m) != 2 {
		b.Fatalf("no VmRSS or Threads in /proc/%d/status", pid)
	}
	return m
}

var schedG = regexp.MustCompile(`^\s+G\d+: status=(\d+)\((.*)\) m=`)

// goroutines returns the wait reason of each of d's live goroutines, from
// the next whole scheduler trace (GODEBUG=schedtrace,scheddetail=1) that
// it prints.
func (d *daemon) goroutines(b *testing.B) []string {
	b.Helper()
	d.logMu.Lock()
	seen := len(d.log)
	d.logMu.Unlock()
	start := -1 // index of the first SCHED line after seen
	deadline := time.After(10 * time.Second)
	for {
		d.logMu.Lock()
		lines, next := d.log, d.logged
		d.logMu.Unlock()
		for i := max(seen, start+1); i < len(lines); i++ {
			if !strings.HasPrefix(lines[i], "SCHED ") {
				continue
			}
			if start < 0 {
				start = i
				continue
			}
			var waits []string
			for _, l := range lines[start+1 : i] {
				switch m := schedG.FindStringSubmatch(l); {
				case m == nil, m[1] == "6": // 6: dead
				case m[1] == "3": // in a system call (the reason is stale)
					waits = append(waits, "syscall")
				default:
					waits = append(waits, m[2])
				}
			}
			return waits
		}
		select {
		case <-next:
		case <-deadline:
			b.Fatal("reshd printed no scheduler trace (GODEBUG=schedtrace)")
		}
	}
}
