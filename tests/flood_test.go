package tests

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"resh/auth"
	"resh/connection"
	"resh/mitm"
)

// strangerHammer makes TLS handshakes to addr with a key reshd does not
// know, from 127.0.0.1: workers goroutines, each starting one every 50ms,
// until stop is called; stop returns how many were made.
func strangerHammer(t *testing.T, addr string, workers int) (stop func() int64) {
	t.Helper()
	dir := t.TempDir()
	key, _, err := auth.LoadOrCreateIdentity(filepath.Join(dir, auth.IdentityFile))
	if err != nil {
		t.Fatal(err)
	}
	tcfg, err := auth.ClientTLS(key, filepath.Join(dir, auth.KnownHostsFile), addr, false, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ccfg := &connection.Config{
		DialAttempts:   1,
		NetworkChanges: func() (<-chan connection.NetworkChange, func()) { return nil, func() {} },
	}
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg    sync.WaitGroup
		tries atomic.Int64
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for ; ctx.Err() == nil; <-tick.C {
				// The client's handshake ends before the server reads its
				// certificate: leave at once, the server refuses anyway.
				hctx, hcancel := context.WithTimeout(ctx, 5*time.Second)
				c, err := auth.Dial(hctx, "tcp", addr, ccfg, tcfg.Clone())
				hcancel()
				if err == nil {
					_ = c.Close()
				}
				tries.Add(1)
			}
		}()
	}
	var once sync.Once
	stop = func() int64 {
		once.Do(func() { cancel(); wg.Wait() })
		return tries.Load()
	}
	t.Cleanup(func() { stop() })
	return stop
}

// A stranger hammering reshd from the client's own address (one NAT, or
// here loopback) neither blocks a session's resumes nor delays the
// client's new sessions, and does not flood reshd's log (once: 2,241 Warn
// lines in one test, and up to 5s before each handshake of the address).
func TestStrangerDoesNotBlockItsNeighbours(t *testing.T) {
	tlsOnly(t)
	d := startReshd(t)
	p := throughMitm(t, d, mitm.Faults{}, mitm.Faults{DropEvery: time.Second})
	d.logMu.Lock()
	warnBefore := countWarn(d.log)
	d.logMu.Unlock()
	stop := strangerHammer(t, d.addr, 8)
	// Let the stranger's failures pile up first.
	d.waitLog(t, 10*time.Second, "level=WARN", "not in authorized_keys")

	before := p.Stats().Accepted
	type out struct {
		r   result
		err error
	}
	long := make(chan out, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := reshCommand(ctx, p.Addr().String(), "for i in 1 2 3 4 5 6; do echo $i; sleep 1; done; exit 3")
		var o, e strings.Builder
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code, err = ee.ExitCode(), nil
		}
		long <- out{result{o.String(), e.String(), code}, err}
	}()
	var slowest time.Duration
	for i := range 5 {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		outb, err := reshCommand(ctx, d.addr, "echo", fmt.Sprint(i)).CombinedOutput()
		cancel()
		took := time.Since(start)
		if err != nil || strings.TrimSpace(string(outb)) != fmt.Sprint(i) {
			t.Fatalf("resh %d beside the stranger, after %v: %v: %s", i, took, err, outb)
		}
		slowest = max(slowest, took)
	}
	o := <-long
	tries := stop()
	if o.err != nil || o.r.code != 3 || o.r.stdout != "1\n2\n3\n4\n5\n6\n" {
		t.Fatalf("long session through the cut path: %+v", o)
	}
	resumes := p.Stats().Accepted - before - 1
	if resumes < 3 {
		t.Fatalf("the long session's connection was replaced %d times; want one per second", resumes)
	}
	d.logMu.Lock()
	warns := countWarn(d.log) - warnBefore
	d.logMu.Unlock()
	if tries < 100 {
		t.Fatalf("the stranger made only %d handshakes", tries)
	}
	if warns > 3 {
		t.Fatalf("reshd logged %d Warn lines for %d refused handshakes", warns, tries)
	}
	t.Logf("stranger: %d handshakes refused, %d Warn lines; session resumed %d times; slowest new session %v", tries, warns, resumes, slowest)
}

func countWarn(lines []string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, "level=WARN") {
			n++
		}
	}
	return n
}

// floodFiles is the open files limit reshd gets in the flood tests: the
// default soft limit of many systems, which 3,000 connections exceed.
const floodFiles = 1024

// startFlooded starts reshd with an open files limit of floodFiles (soft
// and hard, so that it cannot raise it).
func startFlooded(t testing.TB, flags ...string) *daemon {
	t.Helper()
	d := startReshd(t, flags...)
	lim := unix.Rlimit{Cur: floodFiles, Max: floodFiles}
	if err := unix.Prlimit(d.cmd.Process.Pid, unix.RLIMIT_NOFILE, &lim, nil); err != nil {
		t.Fatalf("prlimit on reshd: %v", err)
	}
	return d
}

// silentFlood opens up to n TCP connections to addr that never send a byte
// and holds them until the test ends; it raises the test's own open files
// limit as far as it can for them, and says so if that is short of n.
func silentFlood(t testing.TB, addr string, n int) []net.Conn {
	t.Helper()
	const spare = 256 // for the test's own files and programs
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < uint64(n+spare) && lim.Cur < lim.Max {
		lim.Cur = min(lim.Max, uint64(n+spare))
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
	}
	if lim.Cur < uint64(n+spare) {
		t.Logf("open files limit %d (hard %d): holding %d silent connections instead of %d", lim.Cur, lim.Max, int(lim.Cur)-spare, n)
		n = int(lim.Cur) - spare
	}
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("silent connection %d: %v", len(conns)+1, err)
		}
		conns = append(conns, c)
	}
	return conns
}

// reshdRSS is reshd's resident memory in bytes.
func reshdRSS(t testing.TB, d *daemon) int64 {
	return procStatus(t, d.cmd.Process.Pid)["VmRSS"]
}

// A legitimate resh gets through while 3,000 silent connections are held
// open against a reshd limited to 1,024 open files (once: 30s, then a
// failure). The deadline is well under the 10s after which reshd drops a
// silent handshake: it is not waiting for them to time out.
func TestSilentFloodDoesNotLockOut(t *testing.T) {
	d := startFlooded(t)
	rss := reshdRSS(t, d)
	conns := silentFlood(t, d.addr, 3000)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	out, err := reshCommand(ctx, d.addr, "echo", "through").CombinedOutput()
	took := time.Since(start)
	if err != nil || strings.TrimSpace(string(out)) != "through" {
		t.Fatalf("resh beside %d silent connections, after %v: %v: %s", len(conns), took, err, out)
	}
	held := reshdRSS(t, d) - rss
	t.Logf("resh took %v beside %d silent connections; reshd's memory grew by %d KB (%d B per connection)", took, len(conns), held>>10, held/int64(len(conns)))
}

// BenchmarkRoundTripUnderFlood is BenchmarkRoundTrip's resh against a
// reshd limited to 1,024 open files, without (baseline) and with 3,000
// silent connections held open; reshd-RSS-B/conn is what each held
// connection costs reshd.
func BenchmarkRoundTripUnderFlood(b *testing.B) {
	for _, flood := range []int{0, 3000} {
		name := "baseline"
		if flood > 0 {
			name = fmt.Sprintf("silent=%d", flood)
		}
		b.Run(name, func(b *testing.B) {
			d := startFlooded(b)
			rss := reshdRSS(b, d)
			conns := silentFlood(b, d.addr, flood)
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if out, err := reshCommand(context.Background(), d.addr, "true").CombinedOutput(); err != nil {
					b.Fatalf("%v: %s", err, out)
				}
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/op")
			if len(conns) > 0 {
				b.ReportMetric(float64(reshdRSS(b, d)-rss)/float64(len(conns)), "reshd-RSS-B/conn")
			}
		})
	}
}
