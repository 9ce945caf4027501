//go:build linux

package tests

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"resh/auth"
	"resh/internal/netnstest"
	"resh/mitm"
)

// Each hop of a session through a master (client to master, master to
// executor) is a connection of its own: damage and drops on either are
// repaired below the session, and only an executor link down for longer
// than -executor-timeout ends its sessions (cluster/spec.md §6).

// clusterFaults are the paths of these tests, in both directions at once:
// "damaged" corrupts and cuts bytes (the connection repairs it without a
// new TCP connection), "hostile" also resets every connection after 700 KiB
// and every second (the connection resumes on a new one).
var clusterFaults = []struct {
	name   string
	faults mitm.Faults
}{
	{"damaged", mitm.Faults{Corrupt: 2e-5, Cut: 1e-5}},
	{"hostile", mitm.Faults{Corrupt: 2e-5, Cut: 1e-5, DropAfter: 700 << 10, DropEvery: time.Second}},
}

// proxyTo starts a clean mitm in front of target, closed when the test
// ends.
func proxyTo(t *testing.T, target string) *mitm.Proxy {
	t.Helper()
	p, err := mitm.Start("127.0.0.1:0", mitm.Config{Target: target, Seed: 13})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// seqOutput is what `seq 1 n` prints.
func seqOutput(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString(strconv.Itoa(i))
		b.WriteByte('\n')
	}
	return b.String()
}

// bulkThroughMaster runs, on master m reached at addr with resh flags
// before the host (-on NAME, say), a 3.9 MB download with an exit status,
// a 2 MB upload and an lcat | ltee of a 3 MB client file, and checks every
// byte and status. It returns how many sessions it opened.
func bulkThroughMaster(t *testing.T, m *daemon, addr string, flags ...string) int {
	t.Helper()
	args := func(command string) []string { return append(append([]string{}, flags...), m.args(addr, command)...) }

	const lines = 500000
	r := resh(t, "", "", args("seq 1 "+strconv.Itoa(lines)+"; exit 5")...)
	if want := seqOutput(lines); r.stdout != want || r.code != 5 || r.stderr != "" {
		t.Errorf("seq 1 %d; exit 5: %d bytes (want %d, equal %v), exit %d, stderr %q",
			lines, len(r.stdout), len(want), r.stdout == want, r.code, r.stderr)
	}

	up := randomText(2<<20, 41)
	r = resh(t, "", up, args("sha256sum; exit 6")...)
	if want := fmt.Sprintf("%x  -\n", sha256.Sum256([]byte(up))); r.stdout != want || r.code != 6 {
		t.Errorf("sha256sum of 2 MB of stdin: %+v, want %q and exit 6", r, want)
	}

	data := randomText(3<<20, 43)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "in"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	r = resh(t, dir, "", args("lcat in | ltee out | sha256sum")...)
	got, err := os.ReadFile(filepath.Join(dir, "out"))
	if want := fmt.Sprintf("%x  -\n", sha256.Sum256([]byte(data))); r.code != 0 || r.stdout != want || err != nil || string(got) != data {
		t.Errorf("lcat in | ltee out | sha256sum: %+v, want %q; out: %d bytes of %d, equal %v (%v)",
			r, want, len(got), len(data), string(got) == data, err)
	}
	return 3
}

// noLog fails t if d logged a line containing every one of words.
func noLog(t *testing.T, d *daemon, words ...string) {
	t.Helper()
	d.logMu.Lock()
	defer d.logMu.Unlock()
	for _, l := range d.log {
		if containsAll(l, words) {
			t.Errorf("logged %q", l)
		}
	}
}

// notLost fails t if master m or executor x (named name) logged that x's
// link was given up: the master ends a link with "executor lost" or
// "executor link closed", and its sessions with "executor NAME lost"; the
// executor says "lost the link to the master".
func notLost(t *testing.T, m, x *daemon, name string) {
	t.Helper()
	noLog(t, m, "executor lost", "name="+name)
	noLog(t, m, "executor link closed", "name="+name)
	noLog(t, m, "executor "+name+" lost")
	noLog(t, x, "lost the link to the master")
}

// countLog is how many lines d logged containing every one of words.
func countLog(d *daemon, words ...string) int {
	d.logMu.Lock()
	defer d.logMu.Unlock()
	n := 0
	for _, l := range d.log {
		if containsAll(l, words) {
			n++
		}
	}
	return n
}

// TestMasterClientHopDamaged: resh → mitm → master with two local
// executors. Output, input, lcat and ltee arrive exact with their status
// while the client's hop is corrupted and cut (one TCP connection per
// session: repaired in place), and also reset (sessions resume on new
// connections).
func TestMasterClientHopDamaged(t *testing.T) {
	for _, path := range clusterFaults {
		t.Run(path.name, func(t *testing.T) {
			m := startMaster(t, []string{"-local", "2"}, "local-1", "local-2")
			p := throughMitm(t, m, path.faults, path.faults)
			before := p.Stats()
			sessions := bulkThroughMaster(t, m, p.Addr().String())
			st := p.Stats()
			if st.Up.Corrupt+st.Down.Corrupt+st.Up.Cut+st.Down.Cut == before.Up.Corrupt+before.Down.Corrupt+before.Up.Cut+before.Down.Cut {
				t.Fatalf("the path did no harm: %+v", st)
			}
			conns := int(st.Accepted - before.Accepted)
			switch {
			case path.name == "damaged" && conns != sessions:
				t.Errorf("%d TCP connections for %d sessions: damage cost reconnections", conns, sessions)
			case path.name == "hostile" && conns <= sessions:
				t.Errorf("%d TCP connections for %d sessions: the resets did not happen", conns, sessions)
			}
			noLog(t, m, "executor lost")
			t.Logf("client hop, %s: %d TCP connections for %d sessions; corrupted %d, cut %d",
				path.name, conns, sessions, st.Up.Corrupt+st.Down.Corrupt, st.Up.Cut+st.Down.Cut)
		})
	}
}

// TestMasterExecutorHopDamaged: an executor joined through a mitm that
// corrupts and cuts its link (repaired on its one TCP connection), and also
// resets it (resumed on new ones), runs sessions placed on it with -on:
// they arrive exact with their status, and the link is never lost.
func TestMasterExecutorHopDamaged(t *testing.T) {
	for _, path := range clusterFaults {
		t.Run(path.name, func(t *testing.T) {
			m := startMaster(t, []string{"-local", "1"}, "local-1")
			p := proxyTo(t, m.addr)
			far := startExecutorAt(t, m, p.Addr().String(), "far")
			logsOnFailure(t, m, far)
			p.SetFaults(path.faults, path.faults)
			sessions := bulkThroughMaster(t, m, m.addr, "-on", "far")
			p.Heal()
			st := p.Stats()
			if st.Up.Corrupt+st.Down.Corrupt+st.Up.Cut+st.Down.Cut == 0 {
				t.Fatalf("the path did no harm: %+v", st)
			}
			switch {
			case path.name == "damaged" && st.Accepted != 1:
				t.Errorf("%d TCP connections for the executor's link: damage cost reconnections", st.Accepted)
			case path.name == "hostile" && st.Accepted <= 1:
				t.Errorf("%d TCP connections for the executor's link: the resets did not happen", st.Accepted)
			case path.name == "hostile":
				far.waitLog(t, 5*time.Second, "the link to the master is back")
			}
			// The sessions ran there, and the link was never given up.
			if n := countLog(m, "session relayed", "executor=far"); n != sessions {
				t.Errorf("%d sessions relayed to far, want %d", n, sessions)
			}
			notLost(t, m, far, "far")
			if r := resh(t, "", "", append([]string{"-on", "far"}, m.args(m.addr, "echo still here")...)...); r.stdout != "still here\n" || r.code != 0 {
				t.Errorf("after the damage, far: %+v", r)
			}
			t.Logf("executor hop, %s: %d TCP connections for the link, %d resumes; corrupted %d, cut %d",
				path.name, st.Accepted, countLog(far, "the link to the master is back"),
				st.Up.Corrupt+st.Down.Corrupt, st.Up.Cut+st.Down.Cut)
		})
	}
}

// running is a resh started in the background, its stdout read line by
// line.
type running struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr *lockedText
	done   chan struct{}
	code   int // once done is closed
}

// lockedText is a strings.Builder that a command writes while a test may
// read it.
type lockedText struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedText) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedText) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startResh starts resh with args and returns once it printed its first
// line, which must be first.
func startResh(t *testing.T, first string, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	r := &running{cmd: reshCommand(ctx, args...), lines: make(chan string, 1000), stderr: &lockedText{}, done: make(chan struct{})}
	r.cmd.Stderr = r.stderr
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(r.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			r.lines <- sc.Text()
		}
		close(r.lines)
		err := r.cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		} else if err != nil {
			r.code = -1
		}
	}()
	t.Cleanup(func() {
		_ = r.cmd.Process.Kill()
		<-r.done
	})
	select {
	case l, ok := <-r.lines:
		if !ok || l != first {
			<-r.done
			t.Fatalf("resh %v: first line %q (ok %v), want %q; stderr: %s", args, l, ok, first, r.stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("resh %v printed nothing within 15s", args)
	}
	return r
}

// wait waits up to within for resh to exit, and returns the lines it
// printed after the first.
func (r *running) wait(t *testing.T, within time.Duration) []string {
	t.Helper()
	var got []string
	deadline := time.After(within)
	for {
		select {
		case l, ok := <-r.lines:
			if !ok {
				select {
				case <-r.done:
					return got
				case <-deadline:
					t.Fatalf("resh did not exit within %v", within)
				}
			}
			got = append(got, l)
		case <-deadline:
			t.Fatalf("resh did not finish within %v; got %d lines; stderr: %s", within, len(got), r.stderr.String())
		}
	}
}

// TestMasterExecutorLostPastTimeout: the link of an executor with a
// session is cut for longer than the master's -executor-timeout (2 s): the
// session ends with 255 and `resh: executor far lost` soon after the
// timeout, the master stops placing work there, and once the path is back
// the executor joins again by itself and takes work.
func TestMasterExecutorLostPastTimeout(t *testing.T) {
	const timeout = 2 * time.Second
	m := startMaster(t, []string{"-local", "1", "-executor-timeout", timeout.String()}, "local-1")
	p := proxyTo(t, m.addr)
	far := startExecutorAt(t, m, p.Addr().String(), "far")
	logsOnFailure(t, m, far)
	on := func(name, command string) []string { return append([]string{"-on", name}, m.args(m.addr, command)...) }

	r := startResh(t, "ready", on("far", "echo ready; exec sleep 60")...)
	p.SetRefuse(1 << 30)
	cut := time.Now()
	p.DropAll()
	if rest := r.wait(t, timeout+15*time.Second); len(rest) != 0 {
		t.Errorf("printed %q after the cut", rest)
	}
	ended := time.Since(cut)
	if r.code != 255 || !strings.Contains(r.stderr.String(), "resh: executor far lost") {
		t.Errorf("after the link was cut: exit %d, stderr %q; want 255 and resh: executor far lost", r.code, r.stderr.String())
	}
	if ended < timeout {
		t.Errorf("the session ended %v after the cut, before the %v timeout", ended, timeout)
	}
	// The master logs the end of the link: "executor lost" for a link
	// given up, "executor link closed" for one it closed on purpose.
	if l := m.waitLog(t, 5*time.Second, `msg="reshd: executor l`, "name=far"); !strings.Contains(l, "executor lost") {
		t.Errorf("the master's log line for a link given up after -executor-timeout: %q, want \"reshd: executor lost\"", l)
	}
	t.Logf("session ended %v after the cut (timeout %v)", ended.Round(time.Millisecond), timeout)

	// No more work for far: it is not listed up, -on far fails at once,
	// and a session goes to local-1.
	ex := resh(t, "", "", append([]string{"-executors"}, m.args(m.addr)...)...)
	for _, l := range strings.Split(ex.stdout, "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[0] == "far" && f[2] == "up" {
			t.Errorf("-executors lists far up after it was lost:\n%s", ex.stdout)
		}
	}
	if r := resh(t, "", "", on("far", "echo placed")...); r.code != 255 || r.stdout != "" || !strings.Contains(r.stderr, "far") {
		t.Errorf("-on far while far is lost: %+v", r)
	}
	relayed := countLog(m, "session relayed", "executor=local-1")
	if r := resh(t, "", "", m.args(m.addr, "echo elsewhere")...); r.stdout != "elsewhere\n" || r.code != 0 {
		t.Errorf("a session while far is lost: %+v", r)
	}
	m.waitLogN(t, 5*time.Second, relayed+1, "session relayed", "executor=local-1")

	// The path comes back: far joins again by itself and takes work.
	p.SetRefuse(0)
	back := time.Now()
	m.waitLogN(t, 60*time.Second, 2, "executor joined", "name=far ")
	t.Logf("far joined again %v after the path came back (%v after the cut)",
		time.Since(back).Round(time.Millisecond), time.Since(cut).Round(time.Millisecond))
	if r := resh(t, "", "", on("far", "echo back; exit 9")...); r.stdout != "back\n" || r.code != 9 {
		t.Errorf("-on far after it joined again: %+v", r)
	}
	far.waitLog(t, 5*time.Second, "joined the master again")
}

// TestMasterExecutorShortCut: the link of an executor with a session is cut
// for 1.5 s, less than -executor-timeout: the link resumes and the session
// goes on, its output complete and its status kept.
func TestMasterExecutorShortCut(t *testing.T) {
	m := startMaster(t, []string{"-executor-timeout", "20s"})
	p := proxyTo(t, m.addr)
	far := startExecutorAt(t, m, p.Addr().String(), "far")
	logsOnFailure(t, m, far)

	r := startResh(t, "0", append([]string{"-on", "far"}, m.args(m.addr, "for i in $(seq 0 30); do echo $i; sleep 0.1; done; exit 3")...)...)
	p.SetRefuse(1 << 30)
	p.DropAll()
	time.Sleep(1500 * time.Millisecond) // the outage itself
	p.SetRefuse(0)
	back := time.Now()
	rest := r.wait(t, 30*time.Second)
	if want := strings.Fields(strings.TrimSpace(seqOutput(30))); strings.Join(rest, " ") != strings.Join(want, " ") || r.code != 3 {
		t.Errorf("after a 1.5 s cut: lines %q, exit %d, want 1..30 and 3; stderr %q", rest, r.code, r.stderr.String())
	}
	far.waitLog(t, 5*time.Second, "the link to the master is back")
	notLost(t, m, far, "far")
	t.Logf("the session ended %v after the path came back", time.Since(back).Round(time.Millisecond))
}

// TestMasterExecutorInNetns: an executor in its own network namespace joins
// the master over a veth pair; the link goes down for 3 s (less than
// -executor-timeout) while a session on it prints, then up: the session
// completes exactly, and the executor is never lost.
func TestMasterExecutorInNetns(t *testing.T) {
	// reshd -insecure listens only on loopback, which the namespace cannot
	// reach; the connection below is the same in both modes.
	tlsOnly(t)
	link := netnstest.NewLink(t)
	m := startReshdAt(t, link.HostIP+":0", nil, "-master", "-executor-timeout", "20s")
	m.firstContact(t, m.addr)
	ns := startExecutorVia(t, m, []string{"ip", "netns", "exec", link.NS}, m.addr, "ns")
	logsOnFailure(t, m, ns)

	r := startResh(t, "0", append([]string{"-on", "ns"}, m.args(m.addr, "for i in $(seq 0 50); do echo $i; sleep 0.1; done; exit 4")...)...)
	<-r.lines // the session goes on: "1"
	link.Down()
	time.Sleep(3 * time.Second) // the outage itself
	link.Up()
	back := time.Now()
	rest := r.wait(t, 40*time.Second)
	if want := strings.Fields(seqOutput(50))[1:]; strings.Join(rest, " ") != strings.Join(want, " ") || r.code != 4 {
		t.Errorf("after a 3 s outage: lines %q, exit %d, want 2..50 and 4; stderr %q", rest, r.code, r.stderr.String())
	}
	notLost(t, m, ns, "ns")
	if r := resh(t, "", "", append([]string{"-on", "ns"}, m.args(m.addr, "echo again")...)...); r.stdout != "again\n" || r.code != 0 {
		t.Errorf("a new session on ns after the outage: %+v", r)
	}
	t.Logf("the session ended %v after the link came up; the executor logged %d resumes",
		time.Since(back).Round(time.Millisecond), countLog(ns, "the link to the master is back"))
}

// startExecutorVia is startExecutorAt with reshd run through the command
// wrap (ip netns exec NS), which must exec it.
func startExecutorVia(t *testing.T, master *daemon, wrap []string, addr, name string, flags ...string) *daemon {
	t.Helper()
	home := t.TempDir()
	key, _, err := auth.LoadOrCreateIdentity(filepath.Join(home, auth.HostKeyFile))
	require.NoError(t, err)
	_, err = auth.AddAuthorizedKey(filepath.Join(os.Getenv("RESH_HOME"), auth.ExecutorsFile), auth.PublicKey(key), "test executor "+name)
	require.NoError(t, err)
	argv := append(append(append([]string{}, wrap...), filepath.Join(bin, "reshd"), "-join", addr, "-name", name), flags...)
	d, _ := startLogged(t, argv, []string{"RESH_HOME=" + home, "HOME=" + home}, joiningRE)
	d.home = home
	master.waitJoined(t, name)
	return d
}

// dumpLog logs d's log lines, to show what happened around a failure.
func dumpLog(t *testing.T, name string, d *daemon) {
	d.logMu.Lock()
	defer d.logMu.Unlock()
	for _, l := range d.log {
		t.Logf("%s: %s", name, l)
	}
}

// logsOnFailure logs the master's and the executor's logs if the test
// fails.
func logsOnFailure(t *testing.T, m, x *daemon) {
	t.Cleanup(func() {
		if t.Failed() {
			dumpLog(t, "master", m)
			dumpLog(t, "executor", x)
		}
	})
}

// TestExecutorStopsWithLinkDown: an executor whose link is down (the path
// refuses every attempt) while it runs a session stops on SIGINT within a
// bound, as it does with its link up: the hangup ends the session and the
// link, down or not, does not hold it.
func TestExecutorStopsWithLinkDown(t *testing.T) {
	// The master gives the link up after 3 s, before it is stopped at the
	// end (see TestMasterStopsWithExecutorLinkDown); the executor keeps
	// resuming for its default 30 s.
	m := startMaster(t, []string{"-executor-timeout", "3s"})
	p := proxyTo(t, m.addr)
	far := startExecutorAt(t, m, p.Addr().String(), "far")
	logsOnFailure(t, m, far)
	r := startResh(t, "ready", append([]string{"-on", "far"}, m.args(m.addr, "echo ready; exec sleep 60")...)...)
	p.SetRefuse(1 << 30)
	p.DropAll()
	far.waitLog(t, 5*time.Second, "the link to the master lost its transport")
	start := time.Now()
	_ = far.cmd.Process.Signal(os.Interrupt)
	exited := make(chan error, 1)
	go func() { exited <- far.cmd.Wait() }()
	select {
	case <-exited:
		// As long as the harness gives any reshd to stop (startLogged).
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("the executor, its link down with a session running, stopped %v after SIGINT: more than 10s", took.Round(time.Millisecond))
		} else {
			t.Logf("the executor stopped %v after SIGINT", took.Round(time.Millisecond))
		}
	case <-time.After(30 * time.Second):
		_ = far.cmd.Process.Kill()
		<-exited
		t.Errorf("the executor, its link down with a session running, did not stop within 30s of SIGINT")
	}
	_ = r.cmd.Process.Kill()
}

// TestMasterStopsWithExecutorLinkDown: a master whose executor's link is
// down (waiting for a resume within -executor-timeout, 20 s here) stops on
// SIGINT within a bound: shutdown ends the link, it does not wait for the
// link to time out.
func TestMasterStopsWithExecutorLinkDown(t *testing.T) {
	m := startMaster(t, []string{"-executor-timeout", "20s"})
	p := proxyTo(t, m.addr)
	far := startExecutorAt(t, m, p.Addr().String(), "far")
	logsOnFailure(t, m, far)
	p.SetRefuse(1 << 30)
	p.DropAll()
	far.waitLog(t, 5*time.Second, "the link to the master lost its transport")
	start := time.Now()
	_ = m.cmd.Process.Signal(os.Interrupt)
	exited := make(chan error, 1)
	go func() { exited <- m.cmd.Wait() }()
	select {
	case <-exited:
		// As long as the harness gives any reshd to stop (startLogged).
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("the master, an executor's link down, stopped %v after SIGINT: more than 10s", took.Round(time.Millisecond))
		} else {
			t.Logf("the master stopped %v after SIGINT", took.Round(time.Millisecond))
		}
	case <-time.After(30 * time.Second):
		_ = m.cmd.Process.Kill()
		<-exited
		t.Errorf("the master, an executor's link down, did not stop within 30s of SIGINT")
	}
}
