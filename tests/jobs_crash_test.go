package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/proto"
	"resh/store/pgtest"
)

// Durable jobs when something crashes (issue #13): the master, an
// executor, or one of two masters sharing PostgreSQL is killed with -9.

// slowJob prints 0..n-1, one line every step seconds: long enough to be
// caught running, with output that shows any gap or duplicate.
func slowJob(t *testing.T, n int, step float64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "slow.py")
	src := fmt.Sprintf("import sys, time\nfor i in range(%d):\n    print(i, flush=True)\n    time.sleep(%g)\n", n, step)
	require.NoError(t, os.WriteFile(p, []byte(src), 0o644))
	return p
}

// countTo is slowJob's whole output.
func countTo(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%d\n", i)
	}
	return b.String()
}

// reshjobRun runs reshjob against d with args and returns its stdout, its
// stderr and its exit status.
func reshjobRun(t *testing.T, d *daemon, stdin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "reshjob"), reshjobArgs(t, d, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "reshjob %q did not end", args)
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return out.String(), errb.String(), code
}

// submit submits file with args to d and returns the job's id.
func submit(t *testing.T, d *daemon, file string, args ...string) int64 {
	t.Helper()
	out, errs, code := reshjobRun(t, d, "", append([]string{"submit", file}, args...)...)
	require.Equal(t, 0, code, "submit: %s", errs)
	id, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	require.NoError(t, err, "submit printed %q", out)
	return id
}

// status returns job id as d shows it.
func status(t *testing.T, d *daemon, id int64) proto.JobInfo {
	t.Helper()
	out, errs, code := reshjobRun(t, d, "", "status", "-json", strconv.FormatInt(id, 10))
	require.Equal(t, 0, code, "status %d: %s", id, errs)
	var j proto.JobInfo
	require.NoError(t, json.Unmarshal([]byte(out), &j), "status -json printed %q", out)
	if j.ID == 0 { // the answer's wrapper
		var js proto.Jobs
		require.NoError(t, json.Unmarshal([]byte(out), &js))
		require.Len(t, js.Jobs, 1)
		j = js.Jobs[0]
	}
	return j
}

// waitState waits until job id is in state on d.
func waitState(t *testing.T, d *daemon, id int64, state string, within time.Duration) proto.JobInfo {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		j := status(t, d, id)
		if j.State == state {
			return j
		}
		require.True(t, time.Now().Before(deadline), "job %d is %s, not %s, after %v", id, j.State, state, within)
		time.Sleep(100 * time.Millisecond)
	}
}

// waitRunning waits until job id runs on an executor of d's.
func waitRunning(t *testing.T, d *daemon, id int64, within time.Duration) proto.JobInfo {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		j := status(t, d, id)
		if j.State == "running" && j.Executor != "" {
			return j
		}
		require.True(t, time.Now().Before(deadline), "job %d is %s on %q, not running, after %v", id, j.State, j.Executor, within)
		time.Sleep(100 * time.Millisecond)
	}
}

// attached is `reshjob attach ID` running in the background.
type attached struct {
	cmd  *exec.Cmd
	out  *watched
	err  *watched
	done chan struct{}
	code int
}

func attach(t *testing.T, d *daemon, id int64) *attached {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "reshjob"), reshjobArgs(t, d, "attach", strconv.FormatInt(id, 10))...)
	a := &attached{cmd: cmd, out: newWatched(), err: newWatched(), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = a.out, a.err
	require.NoError(t, cmd.Start())
	go func() {
		_ = cmd.Wait()
		a.code = cmd.ProcessState.ExitCode()
		close(a.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-a.done
	})
	return a
}

// wait waits for the attached client's end and returns its status.
func (a *attached) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-a.done:
		return a.code
	case <-time.After(within):
		t.Fatalf("reshjob attach did not end within %v; stdout %q stderr %q", within, a.out.String(), a.err.String())
		return -1
	}
}

// kill9 kills d at once, as a crash would.
func kill9(t *testing.T, d *daemon) {
	t.Helper()
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGKILL))
	_ = d.cmd.Wait()
}

// storeFlag is the -store of a master whose jobs live in dir.
func storeFlag(dir string) []string {
	return []string{"-store", filepath.Join(dir, "jobs.db")}
}

func TestJobsMasterKilledAndRestarted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	flags := append([]string{"-master", "-executor-timeout", "3s"}, storeFlag(dir)...)
	m := startReshd(t, flags...)
	showLogsOnFailure(t, m)
	ex1 := startExecutor(t, m, "ex1", "-max-tasks", "1")
	ex2 := startExecutor(t, m, "ex2", "-max-tasks", "1")
	showLogsOnFailure(t, ex1)
	showLogsOnFailure(t, ex2)

	const lines = 40
	prog := slowJob(t, lines, 0.1)
	ids := make([]int64, 4)
	clients := make([]*attached, 4)
	for i := range ids {
		ids[i] = submit(t, m, prog)
		clients[i] = attach(t, m, ids[i])
	}
	// Two run (one per executor), two wait.
	for _, i := range []int{0, 1} {
		clients[i].out.wait(t, 20*time.Second, "5\n", clients[i].err)
	}
	assert.Equal(t, "queued", status(t, m, ids[3]).State)

	kill9(t, m)
	m2 := startReshdAt(t, m.addr, nil, flags...)
	showLogsOnFailure(t, m2)
	m2.waitJoined(t, "ex1")
	m2.waitJoined(t, "ex2")

	for i, c := range clients {
		code := c.wait(t, 60*time.Second)
		assert.Equal(t, 0, code, "job %d: stderr %q", ids[i], c.err.String())
		assert.Equal(t, countTo(lines), c.out.String(), "job %d: the whole output, no gap, no duplicate", ids[i])
	}
	for _, id := range ids {
		j := status(t, m2, id)
		assert.Equal(t, "finished", j.State, "job %d", id)
		assert.Equal(t, 1, j.Attempts, "job %d ran once: the running ones were re-attached, not run again", id)
		assert.Equal(t, proto.VerdictOK, j.Verdict)
	}
}

// A master killed (-9) takes its local executors with it, and their jobs:
// restarted on its address, it runs them again as soon as the new local
// executor joins without them, not when their lease runs out (90 s here).
func TestJobsRestartedMasterRerunsItsLocalJobs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addr := freeLoopback(t)
	flags := append([]string{"-master", "-local", "1"}, storeFlag(dir)...)
	m := startReshdAt(t, addr, nil, flags...)
	m.firstContact(t, addr)
	showLogsOnFailure(t, m)
	m.waitJoined(t, "local-1")
	const lines = 20
	id := submit(t, m, slowJob(t, lines, 0.1))
	require.Equal(t, "local-1", waitRunning(t, m, id, 20*time.Second).Executor)

	kill9(t, m)
	m2 := startReshdAt(t, addr, nil, flags...)
	showLogsOnFailure(t, m2)
	j := waitState(t, m2, id, "finished", 40*time.Second)
	assert.Equal(t, 2, j.Attempts, "run again once")
	assert.Equal(t, proto.VerdictOK, j.Verdict)
	m2.waitLog(t, time.Second, "before it restarted: lost", fmt.Sprintf("job=%d", id))
	out, errs, code := reshjobRun(t, m2, "", "attach", strconv.FormatInt(id, 10))
	assert.Equal(t, 0, code, errs)
	assert.Equal(t, countTo(lines), out)
}

func TestJobsExecutorKilledRunsElsewhere(t *testing.T) {
	t.Parallel()
	m := startReshd(t, append([]string{"-master", "-executor-timeout", "2s"}, storeFlag(t.TempDir())...)...)
	showLogsOnFailure(t, m)
	execs := map[string]*daemon{
		"ex1": startExecutor(t, m, "ex1", "-max-tasks", "1"),
		"ex2": startExecutor(t, m, "ex2", "-max-tasks", "1"),
	}
	const lines = 30
	id := submit(t, m, slowJob(t, lines, 0.1))
	first := waitRunning(t, m, id, 20*time.Second)
	require.Contains(t, execs, first.Executor)
	c := attach(t, m, id)
	c.out.wait(t, 20*time.Second, "3\n", c.err)
	kill9(t, execs[first.Executor])

	assert.Equal(t, 0, c.wait(t, 60*time.Second), "stderr %q", c.err.String())
	j := status(t, m, id)
	assert.Equal(t, "finished", j.State)
	assert.Equal(t, 2, j.Attempts, "run again once, elsewhere")
	assert.NotEqual(t, first.Executor, j.Executor)
	// The output stored is the second attempt's, whole.
	out, errs, code := reshjobRun(t, m, "", "attach", strconv.FormatInt(id, 10))
	assert.Equal(t, 0, code, errs)
	assert.Equal(t, countTo(lines), out)
}

func TestJobsExecutorLostWithoutRetries(t *testing.T) {
	t.Parallel()
	m := startReshd(t, append([]string{"-master", "-executor-timeout", "2s", "-job-retries", "0"}, storeFlag(t.TempDir())...)...)
	showLogsOnFailure(t, m)
	ex := startExecutor(t, m, "only", "-max-tasks", "1")
	id := submit(t, m, slowJob(t, 100, 0.1))
	waitRunning(t, m, id, 20*time.Second)
	c := attach(t, m, id)
	c.out.wait(t, 20*time.Second, "2\n", c.err)
	kill9(t, ex)

	assert.Equal(t, proto.ExitExecutorLost, c.wait(t, 30*time.Second))
	assert.Contains(t, c.err.String(), "reshjob: EXECUTOR_LOST")
	j := status(t, m, id)
	assert.Equal(t, "failed", j.State)
	assert.Contains(t, j.Reason, "EXECUTOR_LOST")
}

func TestJobsStaleExecutorIgnored(t *testing.T) {
	// An executor frozen past the timeout: its job runs elsewhere; when it
	// thaws and comes back with its result, that result is not stored.
	t.Parallel()
	m := startReshd(t, append([]string{"-master", "-executor-timeout", "2s"}, storeFlag(t.TempDir())...)...)
	showLogsOnFailure(t, m)
	execs := map[string]*daemon{
		"ex1": startExecutor(t, m, "ex1", "-max-tasks", "1"),
		"ex2": startExecutor(t, m, "ex2", "-max-tasks", "1"),
	}
	id := submit(t, m, slowJob(t, 20, 0.1))
	first := waitRunning(t, m, id, 20*time.Second)
	frozen := execs[first.Executor]
	require.NoError(t, frozen.cmd.Process.Signal(syscall.SIGSTOP))
	thawed := false
	defer func() {
		if !thawed {
			_ = frozen.cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	done := waitState(t, m, id, "finished", 60*time.Second)
	assert.NotEqual(t, first.Executor, done.Executor)
	assert.Equal(t, 2, done.Attempts)

	require.NoError(t, frozen.cmd.Process.Signal(syscall.SIGCONT))
	thawed = true
	m.waitLogN(t, 30*time.Second, 2, "executor joined", "name="+first.Executor+" ")
	after := status(t, m, id)
	assert.Equal(t, done.Executor, after.Executor, "the late executor's end is ignored")
	assert.Equal(t, done.Ended, after.Ended)
	assert.Equal(t, done.StdoutLen, after.StdoutLen)
}

func TestJobsStoreSurvivesMasterKills(t *testing.T) {
	// Kill the master in a loop while clients submit: every submission
	// that was acknowledged is there after each restart.
	t.Parallel()
	dir := t.TempDir()
	flags := storeFlag(dir)
	prog := filepath.Join(t.TempDir(), "hi.py")
	require.NoError(t, os.WriteFile(prog, []byte("print('hi')\n"), 0o644))
	d := startReshd(t, flags...)
	// A submission cut by the crash gives up at once: it was not
	// acknowledged, nothing is promised of it.
	args := append([]string{"-give-up", "1s"}, reshjobArgs(t, d, "submit", prog)...)
	var acked []int64
	for round := range 20 {
		var mu sync.Mutex
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					cmd := exec.Command(filepath.Join(bin, "reshjob"), args...)
					out, err := cmd.Output()
					if err != nil {
						continue // not acknowledged: nothing is promised
					}
					id, perr := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
					if perr != nil {
						t.Errorf("round %d: submit printed %q", round, out)
						return
					}
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(100+rand.IntN(300)) * time.Millisecond) // a crash at a random moment
		kill9(t, d)
		d = startReshdAt(t, d.addr, nil, flags...)
		close(stop)
		wg.Wait()
	}
	require.NotEmpty(t, acked)
	out, errs, code := reshjobRun(t, d, "", "ls", "-all", "-json")
	require.Equal(t, 0, code, errs)
	var jobs []proto.JobInfo
	if err := json.Unmarshal([]byte(out), &jobs); err != nil {
		var js proto.Jobs
		require.NoError(t, json.Unmarshal([]byte(out), &js), "ls -json printed %q", out)
		jobs = js.Jobs
	}
	have := map[int64]bool{}
	for _, j := range jobs {
		have[j.ID] = true
	}
	for _, id := range acked {
		if !have[id] {
			// ls shows the newest 100: ask for the others one by one.
			assert.Equal(t, id, status(t, d, id).ID)
		}
	}
	t.Logf("%d submissions acknowledged over 20 crashes", len(acked))
}

func TestJobsTwoMastersOnePostgres(t *testing.T) {
	// 200 jobs submitted to two masters sharing a PostgreSQL: each runs
	// exactly once; then one master is killed mid-way and the other
	// finishes its work once the lease ran out.
	t.Parallel()
	url := pgtest.Start(t)
	runs := filepath.Join(t.TempDir(), "runs.log")
	require.NoError(t, os.WriteFile(runs, nil, 0o666))
	prog := filepath.Join(t.TempDir(), "mark.py")
	require.NoError(t, os.WriteFile(prog, []byte(fmt.Sprintf(
		"import sys, time\nwith open(%q, 'a') as f:\n    f.write(sys.argv[1] + '\\n')\ntime.sleep(float(sys.argv[2]))\n", runs)), 0o644))
	flags := []string{"-master", "-executor-timeout", "2s", "-store", url}
	m1 := startReshd(t, flags...)
	m2 := startReshd(t, flags...)
	showLogsOnFailure(t, m1)
	showLogsOnFailure(t, m2)
	// Unsafe executors, so that the jobs can write the runs' log.
	startExecutor(t, m1, "a1", "-max-tasks", "4", "-unsafe-no-sandbox")
	startExecutor(t, m2, "b1", "-max-tasks", "4", "-unsafe-no-sandbox")

	submitAll := func(prefix string, n int, sleep string) map[string]int64 {
		ids := map[string]int64{}
		var mu sync.Mutex
		work := make(chan int)
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					d := m1
					if i%2 == 1 {
						d = m2
					}
					token := fmt.Sprintf("%s%d", prefix, i)
					cmd := exec.Command(filepath.Join(bin, "reshjob"), reshjobArgs(t, d, "submit", prog, token, sleep)...)
					out, err := cmd.CombinedOutput()
					if !assert.NoError(t, err, "submit %s: %s", token, out) {
						continue
					}
					id, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
					if assert.NoError(t, err, "%q", out) {
						mu.Lock()
						ids[token] = id
						mu.Unlock()
					}
				}
			}()
		}
		for i := range n {
			work <- i
		}
		close(work)
		wg.Wait()
		return ids
	}
	runsOf := func() map[string]int {
		b, err := os.ReadFile(runs)
		require.NoError(t, err)
		n := map[string]int{}
		for _, l := range strings.Fields(string(b)) {
			n[l]++
		}
		return n
	}
	waitEnded := func(d *daemon, ids map[string]int64, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			out, errs, code := reshjobRun(t, d, "", "ls", "-json")
			require.Equal(t, 0, code, errs)
			var open []proto.JobInfo
			if err := json.Unmarshal([]byte(out), &open); err != nil {
				var js proto.Jobs
				require.NoError(t, json.Unmarshal([]byte(out), &js), "%q", out)
				open = js.Jobs
			}
			if len(open) == 0 {
				return
			}
			require.True(t, time.Now().Before(deadline), "%d jobs still queued or running", len(open))
			time.Sleep(200 * time.Millisecond)
		}
	}

	start := time.Now()
	ids := submitAll("a", 200, "0")
	require.Len(t, ids, 200)
	t.Logf("200 submitted in %v", time.Since(start))
	waitEnded(m1, ids, 2*time.Minute)
	t.Logf("200 ended after %v", time.Since(start))
	n := runsOf()
	for token := range ids {
		assert.Equal(t, 1, n[token], "job %s ran %d times", token, n[token])
	}

	// Now one master dies with jobs running and queued.
	ids = submitAll("b", 40, "0.5")
	kill9(t, m1)
	t.Logf("40 submitted, m1 killed after %v", time.Since(start))
	waitEnded(m2, ids, 2*time.Minute)
	t.Logf("40 ended after %v", time.Since(start))
	n = runsOf()
	for token, id := range ids {
		j := status(t, m2, id)
		assert.Equal(t, "finished", j.State, "job %s", token)
		assert.GreaterOrEqual(t, n[token], 1, "job %s never ran", token)
	}
}
