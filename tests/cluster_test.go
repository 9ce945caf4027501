package tests

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/auth"
)

// Placement: 12 sessions over 3 executors of 2 tasks each. Six run at
// once, two per executor; six wait in the queue, each told its place; as
// slots free, the queued sessions start in the order they came, and each
// gives its own output.
func TestClusterPlacement(t *testing.T) {
	t.Parallel()
	m := startMaster(t, []string{"-local", "3", "-max-tasks", "2"}, "local-1", "local-2", "local-3")
	showLogsOnFailure(t, m)
	const n, running = 12, 6
	tag := func(i int) string { return fmt.Sprintf("started-%02d", i) }
	s := make([]*bgResh, n)
	// One at a time, each seen running or queued before the next comes:
	// the order of arrival is known.
	for i := range n {
		s[i] = startBg(t, append([]string{"-v"}, m.args(m.addr, "echo "+tag(i)+"; cat >/dev/null")...)...)
		if i < running {
			s[i].waitOut(10*time.Second, tag(i))
		} else {
			s[i].waitErr(10*time.Second, fmt.Sprintf("resh: waiting for a free executor (%d ahead)", i-running))
		}
	}
	table := executorsTable(t, m)
	for _, name := range []string{"local-1", "local-2", "local-3"} {
		require.Contains(t, table, name)
		assert.Equal(t, "2/2", table[name].tasks, "%s: %+v", name, table[name])
		assert.Equal(t, "full", table[name].state, "%s: %+v", name, table[name])
	}
	notStarted := func(from int) {
		t.Helper()
		for j := from; j < n; j++ {
			assert.Empty(t, s[j].stdout(), "session %d started before its turn", j)
		}
	}
	notStarted(running)
	// Each running session that ends lets the head of the queue in, and
	// only it.
	for i := range running {
		s[i].release()
		assert.Equal(t, 0, s[i].wait(t, 10*time.Second))
		s[running+i].waitOut(10*time.Second, tag(running+i))
		notStarted(running + i + 1)
	}
	for i := running; i < n; i++ {
		s[i].release()
		assert.Equal(t, 0, s[i].wait(t, 10*time.Second))
	}
	for i := range n {
		assert.Equal(t, tag(i)+"\n", s[i].stdout(), "session %d", i)
	}
	// The last one saw its place go down one by one.
	last := s[n-1].stderrText()
	at := 0
	for ahead := n - running - 1; ahead >= 0; ahead-- {
		k := strings.Index(last[at:], fmt.Sprintf("(%d ahead)", ahead))
		require.GreaterOrEqual(t, k, 0, "no (%d ahead) in order in %q", ahead, last)
		at += k
	}
	m.waitLogN(t, 10*time.Second, n, "reshd: session ended", "executor=")
	peak, used := concurrency(m)
	assert.Len(t, used, 3, "executors used: %v", used)
	for name, p := range peak {
		assert.LessOrEqual(t, p, 2, "executor %s ran %d sessions at once", name, p)
	}
	total := 0
	for _, k := range used {
		total += k
	}
	assert.Equal(t, n, total, "sessions relayed: %v", used)
}

// An executor at its task limit takes nothing more: the next session goes
// to the other one, and the table shows the first as full.
func TestClusterFullExecutorSkipped(t *testing.T) {
	t.Parallel()
	m := startMaster(t, nil)
	showLogsOnFailure(t, m)
	startExecutor(t, m, "small", "-max-tasks", "1")
	startExecutor(t, m, "big", "-max-tasks", "4")
	occupant := startBg(t, append([]string{"-on", "small"}, m.args(m.addr, "echo occupied-small; cat >/dev/null")...)...)
	occupant.waitOut(10*time.Second, "occupied-small")
	assert.Equal(t, "small", relayedOn(t, m, "occupied-small"))
	table := executorsTable(t, m)
	assert.Equal(t, "full", table["small"].state)
	assert.Equal(t, "1/1", table["small"].tasks)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := resh(t, "", "", m.args(m.addr, fmt.Sprintf("echo elsewhere-%d", i))...)
			assert.Equal(t, fmt.Sprintf("elsewhere-%d\n", i), r.stdout)
			assert.Equal(t, 0, r.code, "stderr %q", r.stderr)
		}()
	}
	wg.Wait()
	for i := range 3 {
		assert.Equal(t, "big", relayedOn(t, m, fmt.Sprintf("echo elsewhere-%d", i)))
	}
	// -on small waits for small, rather than going elsewhere.
	pinned := startBg(t, append([]string{"-v", "-on", "small"}, m.args(m.addr, "echo pinned")...)...)
	pinned.waitErr(10*time.Second, "resh: waiting for a free executor (0 ahead)")
	occupant.release()
	assert.Equal(t, 0, occupant.wait(t, 10*time.Second))
	assert.Equal(t, 0, pinned.wait(t, 10*time.Second))
	assert.Equal(t, "pinned\n", pinned.stdout())
	assert.Equal(t, "small", relayedOn(t, m, "echo pinned"))
}

// A queued session whose client gives up (^C while waiting) leaves the
// queue: the one behind it moves up, and its command never runs.
func TestClusterQueuedClientLeaves(t *testing.T) {
	t.Parallel()
	m := startMaster(t, nil)
	showLogsOnFailure(t, m)
	startExecutor(t, m, "solo", "-max-tasks", "1")
	occupant := startBg(t, m.args(m.addr, "echo occupied; cat >/dev/null")...)
	occupant.waitOut(10*time.Second, "occupied")
	marker := filepath.Join(t.TempDir(), "quitter-ran")
	quitter := startBg(t, append([]string{"-v"}, m.args(m.addr, "touch "+marker)...)...)
	quitter.waitErr(10*time.Second, "resh: waiting for a free executor (0 ahead)")
	patient := startBg(t, append([]string{"-v"}, m.args(m.addr, "echo patient")...)...)
	patient.waitErr(10*time.Second, "resh: waiting for a free executor (1 ahead)")
	require.NoError(t, quitter.cmd.Process.Signal(os.Interrupt))
	assert.NotEqual(t, 0, quitter.wait(t, 10*time.Second))
	patient.waitErr(10*time.Second, "resh: waiting for a free executor (0 ahead)")
	occupant.release()
	assert.Equal(t, 0, occupant.wait(t, 10*time.Second))
	assert.Equal(t, 0, patient.wait(t, 10*time.Second))
	assert.Equal(t, "patient\n", patient.stdout())
	assert.NoFileExists(t, marker, "the command of a client that left the queue ran")
	assert.Zero(t, m.countLines("session relayed", "touch "+marker))
}

// An executor above its CPU limit takes nothing: while every core burns,
// the one with -max-cpu 5 is full and the sessions go to the one with
// -max-cpu 100. Not parallel: it takes the whole machine.
func TestClusterCPULimit(t *testing.T) {
	m := startMaster(t, nil)
	showLogsOnFailure(t, m)
	startExecutor(t, m, "hot", "-max-cpu", "5")
	startExecutor(t, m, "cool", "-max-cpu", "100")
	stop := burnCPU(t)
	defer stop()
	// The executor measures over a second and reports at most once a
	// second: wait until the master has heard that it is above 5%.
	waitTable(t, m, 20*time.Second, func(tb map[string]execRow) bool {
		return tb["hot"].state == "full" && tb["hot"].cpu > 5
	})
	for i := range 3 {
		r := resh(t, "", "", m.args(m.addr, fmt.Sprintf("echo cool-%d", i))...)
		assert.Equal(t, fmt.Sprintf("cool-%d\n", i), r.stdout)
		assert.Equal(t, 0, r.code, "stderr %q", r.stderr)
		assert.Equal(t, "cool", relayedOn(t, m, fmt.Sprintf("echo cool-%d", i)))
	}
	table := executorsTable(t, m)
	assert.Equal(t, "up", table["cool"].state, "%+v", table["cool"])
}

// With no executor, or with every executor busy, a session waits in the
// queue for -queue-timeout, then fails with 255 and says why; it never
// runs.
func TestClusterQueueTimeout(t *testing.T) {
	t.Parallel()
	t.Run("no executor", func(t *testing.T) {
		t.Parallel()
		m := startMaster(t, []string{"-queue-timeout", "2s"})
		showLogsOnFailure(t, m)
		start := time.Now()
		r := resh(t, "", "", m.args(m.addr, "echo ran")...)
		assert.Equal(t, 255, r.code)
		assert.Empty(t, r.stdout)
		assert.Contains(t, r.stderr, "no executor took the session within 2s: no executor is up")
		assert.Less(t, time.Since(start), 10*time.Second)
	})
	t.Run("all busy", func(t *testing.T) {
		t.Parallel()
		m := startMaster(t, []string{"-queue-timeout", "2s"})
		showLogsOnFailure(t, m)
		startExecutor(t, m, "solo", "-max-tasks", "1")
		occupant := startBg(t, m.args(m.addr, "echo occupied; cat >/dev/null")...)
		occupant.waitOut(10*time.Second, "occupied")
		start := time.Now()
		r := resh(t, "", "", append([]string{"-v"}, m.args(m.addr, "echo ran")...)...)
		assert.Equal(t, 255, r.code)
		assert.Empty(t, r.stdout)
		assert.Contains(t, r.stderr, "resh: waiting for a free executor (0 ahead)")
		assert.Contains(t, r.stderr, "no executor took the session within 2s")
		assert.Contains(t, r.stderr, "busy")
		assert.GreaterOrEqual(t, time.Since(start), 1500*time.Millisecond)
		// The occupant did not suffer from it.
		occupant.release()
		assert.Equal(t, 0, occupant.wait(t, 10*time.Second))
		assert.Equal(t, "occupied\n", occupant.stdout())
	})
}

// A session that finds the only executor full waits, saying so on the
// terminal, and runs when the running one ends; one behind it waits its
// turn (-v prints each place).
func TestClusterQueueWaits(t *testing.T) {
	t.Parallel()
	m := startMaster(t, nil)
	showLogsOnFailure(t, m)
	startExecutor(t, m, "solo", "-max-tasks", "1")
	occupant := startBg(t, m.args(m.addr, "echo occupied; cat >/dev/null")...)
	occupant.waitOut(10*time.Second, "occupied")
	tm := startTerm(t, 24, 80, m.args(m.addr, "echo ran-$((1+1)); read x")...)
	tm.expect("resh: waiting for a free executor (0 ahead)", 10*time.Second)
	second := startBg(t, append([]string{"-v"}, m.args(m.addr, "echo second-ran")...)...)
	second.waitErr(10*time.Second, "resh: waiting for a free executor (1 ahead)")
	occupant.release()
	assert.Equal(t, 0, occupant.wait(t, 10*time.Second))
	tm.expect("ran-2", 10*time.Second)
	second.waitErr(10*time.Second, "resh: waiting for a free executor (0 ahead)")
	assert.Empty(t, second.stdout(), "ran while the executor was full")
	tm.send("\r")
	assert.Equal(t, 0, tm.wait(10*time.Second))
	assert.Equal(t, 0, second.wait(t, 10*time.Second))
	assert.Equal(t, "second-ran\n", second.stdout())
}

// -on NAME, -executors and -all against three executors by hand, each
// with its own HOME holding the status it exits with.
func TestClusterOnAllExecutors(t *testing.T) {
	t.Parallel()
	m := startMaster(t, nil)
	showLogsOnFailure(t, m)
	codes := map[string]int{"e1": 0, "e2": 3, "e3": 5}
	for i, name := range []string{"e1", "e2", "e3"} {
		e := startExecutor(t, m, name, "-max-tasks", strconv.Itoa(i+1))
		require.NoError(t, os.WriteFile(filepath.Join(e.home, "code"), []byte(strconv.Itoa(codes[name])), 0o644))
	}

	t.Run("executors", func(t *testing.T) {
		r := resh(t, "", "", "-executors", m.addr)
		require.Equal(t, 0, r.code, "stderr %q", r.stderr)
		lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
		require.Len(t, lines, 4, "%q", r.stdout)
		table := parseExecutors(t, r.stdout)
		for i, name := range []string{"e1", "e2", "e3"} {
			row, ok := table[name]
			require.True(t, ok, "%s missing from %q", name, r.stdout)
			assert.Regexp(t, `^127\.0\.0\.1:\d+$`, row.addr)
			assert.Equal(t, "up", row.state)
			assert.Equal(t, fmt.Sprintf("0/%d", i+1), row.tasks)
			assert.Contains(t, strings.Split(row.languages, ","), "sh")
			assert.Regexp(t, `\d+\.\d+`, row.version)
			assert.Regexp(t, `^\d+s$`, row.since)
			assert.True(t, strings.HasPrefix(lines[i+1], name+" "), "sorted by name: %q", r.stdout)
		}
	})

	t.Run("on", func(t *testing.T) {
		for _, name := range []string{"e1", "e2", "e3"} {
			for i := range 2 {
				command := fmt.Sprintf("echo on-%s-%d", name, i)
				r := resh(t, "", "", append([]string{"-on", name}, m.args(m.addr, command)...)...)
				assert.Equal(t, fmt.Sprintf("on-%s-%d\n", name, i), r.stdout)
				assert.Equal(t, 0, r.code, "stderr %q", r.stderr)
				assert.Equal(t, name, relayedOn(t, m, command))
			}
		}
		r := resh(t, "", "", append([]string{"-on", "nope"}, m.args(m.addr, "echo ran")...)...)
		assert.Equal(t, 255, r.code)
		assert.Empty(t, r.stdout)
		assert.Contains(t, r.stderr, `no executor named "nope"`)
		assert.Contains(t, r.stderr, "e1, e2, e3", "the known names")
	})

	t.Run("all", func(t *testing.T) {
		r := resh(t, "", "", append([]string{"-all"}, m.args(m.addr, "c=$(cat $HOME/code); echo out $c; echo err $c >&2; exit $c")...)...)
		assert.Equal(t, 5, r.code, "the largest status")
		assert.ElementsMatch(t, []string{"e1: out 0", "e2: out 3", "e3: out 5"}, lines(r.stdout))
		errs := lines(r.stderr)
		for _, want := range []string{"e1: err 0", "e2: err 3", "e3: err 5"} {
			assert.Contains(t, errs, want)
		}
		summary := slices.DeleteFunc(slices.Clone(errs), func(l string) bool { return regexp.MustCompile(`^e\d: `).MatchString(l) })
		require.Len(t, summary, 1, "one summary line: %q", r.stderr)
		assert.Contains(t, summary[0], "e2 (exit 3)")
		assert.Contains(t, summary[0], "e3 (exit 5)")
		assert.NotContains(t, summary[0], "e1")

		r = resh(t, "", "", append([]string{"-all"}, m.args(m.addr, "echo fine")...)...)
		assert.Equal(t, 0, r.code)
		assert.ElementsMatch(t, []string{"e1: fine", "e2: fine", "e3: fine"}, lines(r.stdout))
		assert.Empty(t, r.stderr)
	})
}

// Keys: a stranger's executor is refused with one log line naming its key
// and address, and never listed; a client's key cannot join; an
// executor's key cannot open a session.
func TestClusterExecutorKeys(t *testing.T) {
	tlsOnly(t)
	t.Parallel()
	m := startMaster(t, nil)
	showLogsOnFailure(t, m)

	t.Run("stranger", func(t *testing.T) {
		home := t.TempDir()
		key, _, err := auth.LoadOrCreateIdentity(filepath.Join(home, auth.HostKeyFile))
		require.NoError(t, err)
		fp := auth.Fingerprint(auth.PublicKey(key))
		x := startUnlisted(t, m, home, "stranger")
		line := m.waitLog(t, 10*time.Second, "refused an executor", fp)
		assert.Regexp(t, `addr=127\.0\.0\.1:\d+`, line)
		assert.NotContains(t, executorsTable(t, m), "stranger")
		// It tries again, and is told what to do each time; the master
		// logs it once, not at each attempt.
		x.waitLogN(t, 15*time.Second, 2, "does not accept this executor's key", fp)
		m.logMu.Lock()
		var naming []string
		for _, l := range m.log {
			if strings.Contains(l, fp) {
				naming = append(naming, l)
			}
		}
		m.logMu.Unlock()
		assert.Len(t, naming, 1, "master log lines naming %s after two attempts:\n%s", fp, strings.Join(naming, "\n"))
	})

	t.Run("client key", func(t *testing.T) {
		home := t.TempDir()
		id, err := os.ReadFile(filepath.Join(os.Getenv("RESH_HOME"), auth.IdentityFile))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(home, auth.HostKeyFile), id, 0o600))
		key, _, err := auth.LoadOrCreateIdentity(filepath.Join(home, auth.HostKeyFile))
		require.NoError(t, err)
		fp := auth.Fingerprint(auth.PublicKey(key))
		x := startUnlisted(t, m, home, "clientkey")
		m.waitLog(t, 10*time.Second, "refused an executor", fp)
		x.waitLog(t, 10*time.Second, "does not accept this executor's key", fp)
		assert.NotContains(t, executorsTable(t, m), "clientkey")
	})

	t.Run("executor key", func(t *testing.T) {
		e := startExecutor(t, m, "keyed")
		r := resh(t, "", "", "-i", filepath.Join(e.home, auth.HostKeyFile), m.addr, "echo ran")
		assert.Equal(t, 255, r.code)
		assert.Empty(t, r.stdout)
		assert.Contains(t, r.stderr, "not authorized")
	})
}

// kill -9 of an executor mid-session: its session ends with 255 and
// "executor NAME lost" within -executor-timeout, a session elsewhere goes
// on, and new sessions go elsewhere.
func TestClusterExecutorKilled(t *testing.T) {
	t.Parallel()
	m := startMaster(t, []string{"-executor-timeout", "3s"})
	showLogsOnFailure(t, m)
	victim := startExecutor(t, m, "victim")
	startExecutor(t, m, "other")
	doomed := startBg(t, append([]string{"-on", "victim"}, m.args(m.addr, "echo doomed; cat")...)...)
	doomed.waitOut(10*time.Second, "doomed")
	safe := startBg(t, append([]string{"-on", "other"}, m.args(m.addr, "echo safe; cat")...)...)
	safe.waitOut(10*time.Second, "safe")

	require.NoError(t, victim.cmd.Process.Kill())
	killed := time.Now()
	code := doomed.wait(t, 15*time.Second)
	lostAfter := time.Since(killed)
	assert.Equal(t, 255, code)
	assert.Contains(t, doomed.stderrText(), "resh: executor victim lost")
	assert.Less(t, lostAfter, 3*time.Second+5*time.Second, "lost long after -executor-timeout")
	t.Logf("session lost %v after kill -9", lostAfter.Round(time.Millisecond))

	_, err := io.WriteString(safe.stdin, "still here\n")
	require.NoError(t, err)
	safe.waitOut(10*time.Second, "still here")
	safe.release()
	assert.Equal(t, 0, safe.wait(t, 10*time.Second))
	assert.Equal(t, "safe\nstill here\n", safe.stdout())

	for i := range 3 {
		command := fmt.Sprintf("echo after-%d", i)
		r := resh(t, "", "", m.args(m.addr, command)...)
		assert.Equal(t, 0, r.code, "stderr %q", r.stderr)
		assert.Equal(t, "other", relayedOn(t, m, command))
	}
	assert.NotEqual(t, "up", executorsTable(t, m)["victim"].state)
}

// A session placed right after an executor was killed, before the master
// gave up on it, still runs at once elsewhere.
func TestClusterPlacementRightAfterKill(t *testing.T) {
	t.Parallel()
	m := startMaster(t, []string{"-executor-timeout", "3s"})
	showLogsOnFailure(t, m)
	victim := startExecutor(t, m, "victim", "-max-tasks", "4")
	startExecutor(t, m, "other", "-max-tasks", "1")
	require.NoError(t, victim.cmd.Process.Kill())
	// The master sees the transport go at once, even if it keeps the
	// link for a resume.
	waitTable(t, m, 10*time.Second, func(tb map[string]execRow) bool { return tb["victim"].state == "lost" })
	start := time.Now()
	r := resh(t, "", "", m.args(m.addr, "echo placed-after-kill")...)
	assert.Equal(t, 0, r.code, "stderr %q", r.stderr)
	assert.Equal(t, "other", relayedOn(t, m, "placed-after-kill"))
	assert.Less(t, time.Since(start), 3*time.Second)
}

// A local executor that dies is restarted by its master, says so in the
// log, joins again under its name and takes work.
func TestClusterLocalExecutorRestarted(t *testing.T) {
	t.Parallel()
	m := startMaster(t, []string{"-local", "1", "-executor-timeout", "3s"}, "local-1")
	showLogsOnFailure(t, m)
	_, port, _ := strings.Cut(m.addr, ":")
	pattern := `-join 127\.0\.0\.1:` + port + ` -name local-1 `
	out, err := exec.Command("pgrep", "-f", "--", pattern).Output()
	require.NoError(t, err, "pgrep -f %q", pattern)
	pids := strings.Fields(string(out))
	require.Len(t, pids, 1)
	pid, err := strconv.Atoi(pids[0])
	require.NoError(t, err)
	p, err := os.FindProcess(pid)
	require.NoError(t, err)
	require.NoError(t, p.Kill())
	m.waitLog(t, 10*time.Second, "local executor exited", "name=local-1")
	m.waitLogN(t, 15*time.Second, 2, "executor joined", "name=local-1 ")
	r := resh(t, "", "", append([]string{"-on", "local-1"}, m.args(m.addr, "echo back")...)...)
	assert.Equal(t, result{"back\n", "", 0}, r)
	assert.Equal(t, "up", executorsTable(t, m)["local-1"].state)
}

// Stopping a master stops its local executors at once: each leaves when
// told to (SIGTERM), none has to be killed, and the master is gone within
// a couple of seconds.
func TestClusterMasterStopsLocals(t *testing.T) {
	t.Parallel()
	m := startMaster(t, []string{"-local", "3"}, "local-1", "local-2", "local-3")
	r := resh(t, "", "", m.args(m.addr, "echo ran")...)
	require.Equal(t, 0, r.code, "stderr %q", r.stderr)
	m.logMu.Lock()
	from := len(m.log)
	m.logMu.Unlock()
	start := time.Now()
	stopReshd(t, m)
	took := time.Since(start)
	m.logMu.Lock()
	after := slices.Clone(m.log[from:])
	m.logMu.Unlock()
	assert.Less(t, took, 3*time.Second, "the master took %v to stop; its log meanwhile:\n%s", took, strings.Join(after, "\n"))
	for _, l := range after {
		assert.NotContains(t, l, "did not stop: killed")
	}
}

// A master restart: an executor by hand sees the link go, keeps trying,
// and joins the new master on the same port by itself; the old master's
// local executors died with it.
func TestClusterMasterRestart(t *testing.T) {
	t.Parallel()
	m := startMaster(t, []string{"-local", "1", "-executor-timeout", "3s"}, "local-1")
	showLogsOnFailure(t, m)
	_, port, ok := strings.Cut(m.addr, ":")
	require.True(t, ok)
	roamer := startExecutor(t, m, "roamer")
	roamer.waitLogN(t, 10*time.Second, 1, "joined the master")
	r := resh(t, "", "", append([]string{"-on", "roamer"}, m.args(m.addr, "echo before")...)...)
	require.Equal(t, 0, r.code, "stderr %q", r.stderr)

	// Its local executor runs (which checks the pattern)...
	// (Their argv[0] is /proc/self/exe, not reshd.)
	pattern := `-join 127\.0\.0\.1:` + port + ` -name local-1 `
	out, err := exec.Command("pgrep", "-f", "--", pattern).Output()
	if err != nil {
		ps, _ := exec.Command("ps", "-eo", "pid,args").Output()
		t.Fatalf("pgrep -f %q finds no local executor while the master runs (%v):\n%s", pattern, err, ps)
	}
	require.NotEmpty(t, strings.TrimSpace(string(out)))
	stopReshd(t, m)
	// ... and is gone once it stopped.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := exec.Command("pgrep", "-f", "--", pattern).Output()
		if len(strings.TrimSpace(string(out))) == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "local executors still running after the master stopped: %s", out)
		time.Sleep(50 * time.Millisecond)
	}
	roamer.waitLog(t, 15*time.Second, "lost the link to the master")
	roamer.waitLogN(t, 15*time.Second, 1, "trying again in")

	m2 := startReshdAt(t, m.addr, nil, "-master")
	roamer.waitLogN(t, 40*time.Second, 2, "joined the master")
	m2.waitJoined(t, "roamer")
	r = resh(t, "", "", append([]string{"-on", "roamer"}, m2.args(m2.addr, "echo after-restart")...)...)
	assert.Equal(t, 0, r.code, "stderr %q", r.stderr)
	assert.Equal(t, "after-restart\n", r.stdout)
	assert.Equal(t, "roamer", relayedOn(t, m2, "after-restart"))
}

// bgResh is resh running in the background, its stdin held open.
type bgResh struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *watched
	err   *watched
	done  chan struct{}
	code  int
}

// startBg starts resh with args; it is killed when the test ends.
func startBg(t *testing.T, args ...string) *bgResh {
	t.Helper()
	cmd := reshCommand(context.Background(), args...)
	cmd.Dir = t.TempDir()
	b := &bgResh{t: t, cmd: cmd, out: newWatched(), err: newWatched(), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = b.out, b.err
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	b.stdin = stdin
	require.NoError(t, cmd.Start())
	go func() {
		defer close(b.done)
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			b.code = ee.ExitCode()
		} else if err != nil {
			b.code = -1
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-b.done
	})
	return b
}

// release closes resh's stdin: a command reading it sees its end.
func (b *bgResh) release() { _ = b.stdin.Close() }

func (b *bgResh) stdout() string     { return b.out.String() }
func (b *bgResh) stderrText() string { return b.err.String() }

func (b *bgResh) waitOut(within time.Duration, want string) {
	b.t.Helper()
	b.out.wait(b.t, within, want, b.err)
}

func (b *bgResh) waitErr(within time.Duration, want string) {
	b.t.Helper()
	b.err.wait(b.t, within, want, b.out)
}

// wait returns resh's exit status.
func (b *bgResh) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-b.done:
		return b.code
	case <-time.After(within):
		t.Fatalf("resh %v did not exit within %v; stdout %q stderr %q", b.cmd.Args[1:], within, b.stdout(), b.stderrText())
		return -1
	}
}

// watched is an output that can be waited on.
type watched struct {
	mu   sync.Mutex
	b    strings.Builder
	more chan struct{} // closed and replaced at each write
}

func newWatched() *watched { return &watched{more: make(chan struct{})} }

func (w *watched) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	close(w.more)
	w.more = make(chan struct{})
	return len(p), nil
}

func (w *watched) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// wait waits until want was written, or fails t.
func (w *watched) wait(t testing.TB, within time.Duration, want string, other *watched) {
	t.Helper()
	deadline := time.After(within)
	for {
		w.mu.Lock()
		s, next := w.b.String(), w.more
		w.mu.Unlock()
		if strings.Contains(s, want) {
			return
		}
		select {
		case <-next:
		case <-deadline:
			t.Fatalf("no %q within %v; got %q (other output %q)", want, within, s, other.String())
		}
	}
}

// execRow is one executor in resh -executors.
type execRow struct {
	addr, state, tasks, languages, version, since string
	cpu                                           float64
}

var cpuCell = regexp.MustCompile(`^(\d+(?:\.\d+)?)%$`)

// executorsHeader is resh -executors' header, its columns left-aligned.
var executorsHeader = []string{"NAME", "ADDRESS", "STATE", "TASKS", "CPU", "LANGUAGES", "VERSION", "SINCE"}

// parseExecutors reads resh -executors' table, cutting each row where the
// header's columns start (a cell may hold spaces, or be empty).
func parseExecutors(t testing.TB, out string) map[string]execRow {
	t.Helper()
	ls := lines(out)
	require.NotEmpty(t, ls, "no table")
	require.Equal(t, executorsHeader, strings.Fields(ls[0]), "header")
	var starts []int
	for _, h := range executorsHeader {
		starts = append(starts, strings.Index(ls[0], h))
	}
	rows := map[string]execRow{}
	for _, l := range ls[1:] {
		var c []string
		for i, at := range starts {
			end := len(l)
			if i+1 < len(starts) {
				end = min(starts[i+1], len(l))
			}
			if at > end {
				at = end
			}
			c = append(c, strings.TrimSpace(l[at:end]))
		}
		m := cpuCell.FindStringSubmatch(c[4])
		require.NotNil(t, m, "CPU cell of %q", l)
		cpu, _ := strconv.ParseFloat(m[1], 64)
		rows[c[0]] = execRow{addr: c[1], state: c[2], tasks: c[3], cpu: cpu, languages: c[5], version: c[6], since: c[7]}
	}
	return rows
}

// executorsTable runs resh -executors against master m.
func executorsTable(t testing.TB, m *daemon) map[string]execRow {
	t.Helper()
	cmd := reshCommand(context.Background(), "-executors", m.addr)
	out, err := cmd.Output()
	require.NoError(t, err, "resh -executors")
	return parseExecutors(t, string(out))
}

// waitTable polls resh -executors until ok holds.
func waitTable(t testing.TB, m *daemon, within time.Duration, ok func(map[string]execRow) bool) map[string]execRow {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		tb := executorsTable(t, m)
		if ok(tb) {
			return tb
		}
		if time.Now().After(deadline) {
			t.Fatalf("the executors table never got there within %v: %+v", within, tb)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var executorField = regexp.MustCompile(`executor=(\S+)`)

// relayedOn returns the executor the master relayed the session whose
// command contains marker to.
func relayedOn(t testing.TB, m *daemon, marker string) string {
	t.Helper()
	line := m.waitLog(t, 10*time.Second, "reshd: session relayed", marker)
	f := executorField.FindStringSubmatch(line)
	require.NotNil(t, f, "no executor in %q", line)
	return f[1]
}

// concurrency reads the master's log: the most sessions each executor had
// at once (between "session relayed" and the master's "session ended",
// which brackets the run on the executor), and how many it had in all.
func concurrency(m *daemon) (peak, used map[string]int) {
	peak, used = map[string]int{}, map[string]int{}
	now := map[string]int{}
	m.logMu.Lock()
	defer m.logMu.Unlock()
	for _, l := range m.log {
		f := executorField.FindStringSubmatch(l)
		if f == nil {
			continue
		}
		switch {
		case strings.Contains(l, "reshd: session relayed"):
			now[f[1]]++
			used[f[1]]++
			peak[f[1]] = max(peak[f[1]], now[f[1]])
		case strings.Contains(l, "reshd: session ended"):
			now[f[1]]--
		}
	}
	return peak, used
}

// startUnlisted starts reshd -join master with RESH_HOME home, whose key
// the master's executors file does not list.
func startUnlisted(t *testing.T, m *daemon, home, name string) *daemon {
	t.Helper()
	argv := []string{filepath.Join(bin, "reshd"), "-join", m.addr, "-name", name}
	d, _ := startLogged(t, argv, []string{"RESH_HOME=" + home, "HOME=" + home}, joiningRE)
	d.home = home
	return d
}

// burnCPU keeps every core busy until the returned function is called (at
// the latest when the test ends).
func burnCPU(t *testing.T) func() {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := 0
			for {
				select {
				case <-stop:
					return
				default:
				}
				for i := range 100000 {
					x += i
				}
			}
		}()
	}
	var once sync.Once
	f := func() { once.Do(func() { close(stop); wg.Wait() }) }
	t.Cleanup(f)
	return f
}

// countLines counts d's log lines containing every one of words.
func (d *daemon) countLines(words ...string) int {
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

// showLogsOnFailure logs the daemons' logs at the end of a failed test.
func showLogsOnFailure(t *testing.T, ds ...*daemon) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for i, d := range ds {
			d.logMu.Lock()
			for _, l := range d.log {
				t.Logf("log %d: %s", i, l)
			}
			d.logMu.Unlock()
		}
	})
}

// lines splits s into its lines, without the empty one after the last
// newline.
func lines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
