package tests

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
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
			if err := exec.Command(filepath.Join(bin, "resh"), d.addr, "true").Run(); err != nil {
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

// BenchmarkLcat reads a client file remotely: lcat through resh against
// ssh HOST cat, and the local disk as the raw baseline.
func BenchmarkLcat(b *testing.B) {
	const size = 256 << 20
	dir := b.TempDir()
	file := filepath.Join(dir, "big")
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	chunk := []byte(strings.Repeat(randomText(1<<20, 3), 1))[:1<<20]
	for i := 0; i < size>>20; i++ {
		_, _ = f.Write(chunk)
	}
	f.Close()
	b.Run("local-cat", func(b *testing.B) {
		b.SetBytes(size)
		for range b.N {
			runTo(b, exec.Command("cat", file))
		}
	})
	b.Run("resh-lcat", func(b *testing.B) {
		d := startReshd(b)
		b.SetBytes(size)
		b.ResetTimer()
		for range b.N {
			cmd := exec.Command(filepath.Join(bin, "resh"), d.addr, "lcat big")
			cmd.Dir = dir
			runTo(b, cmd)
		}
	})
	b.Run("ssh-cat", func(b *testing.B) {
		args := sshd(b)
		b.SetBytes(size)
		b.ResetTimer()
		for range b.N {
			runTo(b, exec.Command("ssh", append(args, "cat", file)...))
		}
	})
}

func runTo(b *testing.B, cmd *exec.Cmd) {
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil || n == 0 {
		b.Fatalf("%v: %v (%d bytes)", cmd.Args, err, n)
	}
}

// BenchmarkIdleSessionMemory reports how much reshd's resident memory grows
// per idle session (a remote `sleep` waiting with nothing to say).
func BenchmarkIdleSessionMemory(b *testing.B) {
	const n = 40
	for range b.N {
		d := startReshd(b)
		before := rss(b, d.cmd.Process.Pid)
		var cmds []*exec.Cmd
		for range n {
			cmd := exec.Command(filepath.Join(bin, "resh"), d.addr, "echo up; exec sleep 60")
			out, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 3)
			if _, err := io.ReadFull(out, buf); err != nil {
				b.Fatal(err)
			}
			cmds = append(cmds, cmd)
		}
		time.Sleep(3 * time.Second) // let the sessions go idle (buffers are released after heartbeats)
		after := rss(b, d.cmd.Process.Pid)
		b.ReportMetric(float64(after-before)/n, "reshd-RSS-B/session")
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}
}

// rss returns a process's resident set size in bytes.
func rss(b *testing.B, pid int) int64 {
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(s), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
