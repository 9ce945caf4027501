//go:build linux

package connection

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"resh/internal/netnstest"
)

// These tests cut a real network: a client in one network namespace, a
// server in another, joined by a veth pair. The link goes down and up, or
// the client's address changes, while the server streams to the client; the
// figure is the time from the network healing to the first byte the client
// reads after it. Both ends run in helper processes (this test binary, run
// by "ip netns exec"), with the default configuration: what a user gets.
//
// They need root and iproute2. Without them they fail, unless RESH_NO_NETNS=1
// says to skip them.

const (
	netnsHelperEnv = "RESH_NETNS_HELPER" // "server" or "client" in a helper process
	netnsAddrEnv   = "RESH_NETNS_ADDR"   // where the helper listens or dials
	netnsClientIP  = "10.77.0.1"
	netnsRoamIP    = "10.77.0.3"
	netnsServerIP  = "10.77.0.2"
)

// netnsRequired fails tb when network namespaces cannot be used, unless
// RESH_NO_NETNS=1.
func netnsRequired(tb testing.TB) { tb.Helper(); netnstest.Required(tb) }

var netnsLabs atomic.Int32

// netnsLab is a client and a server in two namespaces, the server streaming
// a few bytes every 10 ms to the client.
type netnsLab struct {
	tb             testing.TB
	clientNS       string
	serverNS       string
	clientIP       string
	server, client *netnsHelper

	mu      sync.Mutex
	reads   []time.Time // when the client read bytes
	changed chan struct{}
}

func newNetnsLab(tb testing.TB) *netnsLab {
	tb.Helper()
	netnsRequired(tb)
	n := netnsLabs.Add(1)
	l := &netnsLab{
		tb:       tb,
		clientNS: fmt.Sprintf("resh-%d-%d-c", os.Getpid(), n),
		serverNS: fmt.Sprintf("resh-%d-%d-s", os.Getpid(), n),
		clientIP: netnsClientIP,
		changed:  make(chan struct{}),
	}
	for _, ns := range []string{l.clientNS, l.serverNS} {
		l.ip("netns", "add", ns)
		tb.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	l.ip("-n", l.clientNS, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", l.serverNS)
	l.ip("-n", l.clientNS, "addr", "add", l.clientIP+"/24", "dev", "veth0")
	l.ip("-n", l.serverNS, "addr", "add", netnsServerIP+"/24", "dev", "veth1")
	// After the link comes back the first ARP exchange is often lost (the
	// peer's queue is not yet reactivated) and Linux retries after 1 s: every
	// SYN waits behind it, beyond any client's reach. Retry every 100 ms
	// here, so that the figure is the client's, not the ARP timer's.
	l.ip("-n", l.clientNS, "ntable", "change", "name", "arp_cache", "dev", "veth0", "retrans", "100")
	l.ip("-n", l.serverNS, "ntable", "change", "name", "arp_cache", "dev", "veth1", "retrans", "100")
	l.ip("-n", l.clientNS, "link", "set", "veth0", "up")
	l.ip("-n", l.serverNS, "link", "set", "veth1", "up")

	l.server = startNetnsHelper(tb, l.serverNS, "server", netnsServerIP+":0")
	addr := l.server.expect("listening ")
	l.client = startNetnsHelper(tb, l.clientNS, "client", addr)
	l.client.expect("connected")
	go l.collect()
	l.waitRead(time.Now(), 10*time.Second)
	return l
}

// ip runs ip with args, failing the test if it fails.
func (l *netnsLab) ip(args ...string) {
	l.tb.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.tb.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// collect records the client's reads.
func (l *netnsLab) collect() {
	for line := range l.client.lines {
		ns, ok := strings.CutPrefix(line, "read ")
		if !ok {
			continue
		}
		v, err := strconv.ParseInt(ns, 10, 64)
		if err != nil {
			continue
		}
		l.mu.Lock()
		l.reads = append(l.reads, time.Unix(0, v))
		close(l.changed)
		l.changed = make(chan struct{})
		l.mu.Unlock()
	}
}

// waitRead returns the first read after t, waiting up to within for it.
func (l *netnsLab) waitRead(t time.Time, within time.Duration) time.Time {
	l.tb.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		for _, r := range l.reads {
			if r.After(t) {
				l.mu.Unlock()
				return r
			}
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			l.tb.Fatalf("the client read nothing within %v after %v", within, t.Format(time.TimeOnly+".000"))
		}
	}
}

// quiet fails unless the client read nothing between from and to: the
// outage was real.
func (l *netnsLab) quiet(from, to time.Time) {
	l.tb.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var in []string
	for _, r := range l.reads {
		if r.After(from) && r.Before(to) {
			in = append(in, r.Sub(from).String())
		}
	}
	if len(in) > 0 {
		l.tb.Fatalf("the client read bytes %v after %v during the outage (until %v): the network was not cut", in, from.Format(time.TimeOnly+".000"), to.Format(time.TimeOnly+".000"))
	}
}

// outage takes the client's link down for d and returns how long after the
// command bringing it back up started the client read again.
func (l *netnsLab) outage(d time.Duration) time.Duration {
	l.tb.Helper()
	l.waitRead(time.Now(), 10*time.Second) // flowing
	l.ip("-n", l.clientNS, "link", "set", "veth0", "down")
	down := time.Now()
	time.Sleep(d)    // the outage itself
	up := time.Now() // from the start of the command: its own few ms count
	l.ip("-n", l.clientNS, "link", "set", "veth0", "up")
	l.quiet(down.Add(200*time.Millisecond), up)
	return l.waitRead(up, 30*time.Second).Sub(up)
}

// roam removes the client's address, and after gap gives it another one (a
// laptop moving to another network); it returns how long after the command
// adding the new address started the client read again.
func (l *netnsLab) roam(gap time.Duration) time.Duration {
	l.tb.Helper()
	l.waitRead(time.Now(), 10*time.Second)
	next := netnsRoamIP
	if l.clientIP == netnsRoamIP {
		next = netnsClientIP
	}
	l.ip("-n", l.clientNS, "addr", "del", l.clientIP+"/24", "dev", "veth0")
	gone := time.Now()
	time.Sleep(gap)
	back := time.Now()
	l.ip("-n", l.clientNS, "addr", "add", next+"/24", "dev", "veth0")
	l.clientIP = next
	l.quiet(gone.Add(200*time.Millisecond), back)
	return l.waitRead(back, 30*time.Second).Sub(back)
}

// netnsHelper is this test binary running a helper in a namespace.
type netnsHelper struct {
	tb    testing.TB
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

func startNetnsHelper(tb testing.TB, ns, role, addr string) *netnsHelper {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, exe, "-test.run=^TestNetnsHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), netnsHelperEnv+"="+role, netnsAddrEnv+"="+addr)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	h := &netnsHelper{tb: tb, cmd: cmd, stdin: stdin, lines: make(chan string, 1024)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
	}()
	tb.Cleanup(func() {
		stdin.Close() // the helper ends when its stdin does
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			tb.Errorf("%s helper did not stop", role)
		}
		if s := stderr.String(); s != "" {
			tb.Logf("%s helper:\n%s", role, s)
		}
	})
	return h
}

// expect returns the rest of the first line starting with prefix.
func (h *netnsHelper) expect(prefix string) string {
	h.tb.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case line, ok := <-h.lines:
			if !ok {
				h.tb.Fatalf("helper ended before saying %q", prefix)
			}
			if rest, found := strings.CutPrefix(line, prefix); found {
				return rest
			}
		case <-deadline:
			h.tb.Fatalf("helper did not say %q", prefix)
		}
	}
}

// TestNetnsHelper is the helper process: it does nothing unless started by
// startNetnsHelper.
func TestNetnsHelper(t *testing.T) {
	role, addr := os.Getenv(netnsHelperEnv), os.Getenv(netnsAddrEnv)
	if role == "" {
		return
	}
	stop := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s %s: %s\n", time.Now().Format(time.TimeOnly+".000"), role, fmt.Sprintf(format, args...))
	}
	var lastErr string
	cfg := &Config{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})), OnState: func(e StateEvent) {
		if e.Err != nil && e.Err.Error() == lastErr {
			return // one line per run of the same failure
		}
		lastErr = fmt.Sprint(e.Err)
		logf("state %+v", e)
	}}
	switch role {
	case "server":
		srv, err := Listen("tcp", addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		fmt.Printf("listening %s\n", srv.Addr())
		acc, err := srv.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer acc.abort()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := acc.Write([]byte("tick\n")); err != nil {
					logf("write: %v", err)
					return
				}
			}
		}
	case "client":
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cl, err := Dial(ctx, "tcp", addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println("connected")
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 4096)
			for {
				if _, err := cl.Read(buf); err != nil {
					logf("read: %v", err)
					return
				}
				fmt.Printf("read %d\n", time.Now().UnixNano())
			}
		}()
		<-stop
		cl.abort()
		<-done
	}
}

// The network heals: the client reads again within a second (the figure is
// about a tenth of that; BenchmarkResumeAfterOutage measures it), whether
// the link was down for less than the dead timeout or longer, and when the
// client's address changed.
func TestResumeAfterOutageNetns(t *testing.T) {
	t.Parallel()
	lab := newNetnsLab(t)
	for _, d := range []time.Duration{3 * time.Second, 20 * time.Second} {
		t.Run(fmt.Sprintf("link down %v", d), func(t *testing.T) {
			lab.tb = t
			got := lab.outage(d)
			t.Logf("first byte %v after the link came back", got.Round(time.Millisecond))
			if got > time.Second {
				t.Errorf("first byte %v after the link came back, want under 1s", got.Round(time.Millisecond))
			}
		})
	}
	t.Run("roaming", func(t *testing.T) {
		lab.tb = t
		got := lab.roam(time.Second)
		t.Logf("first byte %v after the new address", got.Round(time.Millisecond))
		if got > time.Second {
			t.Errorf("first byte %v after the new address, want under 1s", got.Round(time.Millisecond))
		}
	})
}

// BenchmarkResumeAfterOutage reports the milliseconds from the network
// healing to the first byte read, per kind of outage. Each iteration takes
// the outage's length; run it with -benchtime=1x for one of each.
func BenchmarkResumeAfterOutage(b *testing.B) {
	lab := newNetnsLab(b)
	for _, tc := range []struct {
		name string
		cut  func() time.Duration
	}{
		{"down-3s", func() time.Duration { return lab.outage(3 * time.Second) }},
		{"down-20s", func() time.Duration { return lab.outage(20 * time.Second) }},
		{"roam-1s", func() time.Duration { return lab.roam(time.Second) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			lab.tb = b
			var total time.Duration
			for b.Loop() {
				total += tc.cut()
			}
			b.ReportMetric(float64(total.Microseconds())/1e3/float64(b.N), "ms-to-first-byte")
		})
	}
}
