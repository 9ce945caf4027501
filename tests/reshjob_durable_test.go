package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/auth"
	"resh/proto"
)

// Durable jobs through reshjob's commands (issue #13), end to end with the
// built programs: submit then attach, run, ls, status and cancel of a
// queued and of a running job, ^C, and owners.

// startJobsReshd starts reshd with flags and a job store of its own (the
// tests share RESH_HOME, where the store is by default).
func startJobsReshd(t *testing.T, flags ...string) *daemon {
	t.Helper()
	return startReshd(t, append([]string{"-store", filepath.Join(t.TempDir(), "jobs.db")}, flags...)...)
}

// durableRun runs reshjob with opts before HOST (with -known-only or
// -insecure as reshjobArgs gives them) and args after it, and stdin;
// it returns the exit status, stdout and stderr.
func durableRun(t *testing.T, d *daemon, opts []string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	all := reshjobArgs(t, d, args...)
	all = append(append([]string{}, opts...), all...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "reshjob"), all...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "reshjob %q did not end", all)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), out.String(), errb.String()
	}
	require.NoError(t, err)
	return 0, out.String(), errb.String()
}

// durableSubmit submits a program and returns its id.
func durableSubmit(t *testing.T, d *daemon, opts []string, stdin string, args ...string) int64 {
	t.Helper()
	code, out, errs := durableRun(t, d, opts, stdin, append([]string{"submit"}, args...)...)
	require.Equal(t, 0, code, "submit: %s", errs)
	require.Empty(t, errs)
	require.Regexp(t, `^[1-9][0-9]*\n$`, out)
	id, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	require.NoError(t, err)
	return id
}

// durableStatus is job id as status -json shows it.
func durableStatus(t *testing.T, d *daemon, opts []string, id int64) proto.JobInfo {
	t.Helper()
	code, out, errs := durableRun(t, d, opts, "", "status", "-json", fmt.Sprint(id))
	require.Equal(t, 0, code, "status: %s", errs)
	var j proto.JobInfo
	require.NoError(t, json.Unmarshal([]byte(out), &j), "%q", out)
	return j
}

// durableWaitState waits until job id is in state.
func durableWaitState(t *testing.T, d *daemon, id int64, state string) proto.JobInfo {
	t.Helper()
	var j proto.JobInfo
	require.Eventually(t, func() bool {
		j = durableStatus(t, d, nil, id)
		return j.State == state
	}, 30*time.Second, 50*time.Millisecond, "job %d did not become %s", id, state)
	return j
}

// sandboxOK skips the test when reshd cannot run a job's sandbox here.
func sandboxOK(t *testing.T, d *daemon) {
	t.Helper()
	skipWithout(t, "bwrap", "python3")
	code, _, errs := durableRun(t, d, nil, "", "run", "-lang", "python", "-")
	if code == 125 {
		t.Skipf("the executor cannot build the sandbox here: %s", errs)
	}
	require.Equal(t, 0, code, "stderr %q", errs)
}

const durableHello = `import sys
print("hello %s, args %s" % (sys.stdin.read().strip(), " ".join(sys.argv[1:])))
print("to stderr", file=sys.stderr)
sys.exit(3)
`

// submit stores the job with its stdin and prints its id; attach streams
// its output (from the start, or from offsets) and exits as it did.
func TestReshjobDurableSubmitAttach(t *testing.T) {
	d := startJobsReshd(t)
	sandboxOK(t, d)
	prog := writeProgram(t, "hello.py", durableHello)
	id := durableSubmit(t, d, nil, "world\n", prog, "a", "-b")
	code, out, errs := durableRun(t, d, nil, "", "attach", fmt.Sprint(id))
	assert.Equal(t, 3, code)
	assert.Equal(t, "hello world, args a -b\n", out)
	assert.Equal(t, "to stderr\n"+verdictLine("RUNTIME_ERROR", "exit status 3"), errs)

	// Again, from offsets: the rest only.
	code, out, errs = durableRun(t, d, nil, "", "attach", "-from", "6:3", "-json", fmt.Sprint(id))
	assert.Equal(t, 3, code)
	rest, obj, ok := strings.Cut(out, "\n")
	require.True(t, ok, "%q", out)
	assert.Equal(t, "world, args a -b", rest)
	assert.Equal(t, "stderr\n"+verdictLine("RUNTIME_ERROR", "exit status 3"), errs)
	var r jobReport
	require.NoError(t, json.Unmarshal([]byte(obj), &r), "%q", obj)
	assert.Equal(t, "RUNTIME_ERROR", r.Verdict)
	assert.Equal(t, 3, r.Exit)

	j := durableStatus(t, d, nil, id)
	assert.Equal(t, "finished", j.State)
	assert.Equal(t, []string{"a", "-b"}, j.Args)
	assert.EqualValues(t, len("hello world, args a -b\n"), j.StdoutLen)
}

// run is submit and attach in one: the output and status as before.
func TestReshjobDurableRun(t *testing.T) {
	d := startJobsReshd(t)
	sandboxOK(t, d)
	code, out, errs := durableRun(t, d, []string{"-v"}, "you\n", "run", writeProgram(t, "hello.py", durableHello), "x")
	assert.Equal(t, 3, code)
	assert.Equal(t, "hello you, args x\n", out)
	assert.Regexp(t, `^reshjob: job \d+ submitted\n(reshjob: job \d+ queued\n)?reshjob: job \d+ running on \S+\nto stderr\nreshjob: RUNTIME_ERROR \(exit status 3\)\n$`, errs)
}

// A job queued (on a master with no executor yet) is listed, shown and
// cancelled; cancelling it again is an error.
func TestReshjobDurableQueuedCancel(t *testing.T) {
	m := startMaster(t, []string{"-store", filepath.Join(t.TempDir(), "jobs.db")})
	id := durableSubmit(t, m, nil, "", writeProgram(t, "never.py", "print('never')\n"))
	code, out, errs := durableRun(t, m, nil, "", "ls")
	require.Equal(t, 0, code, "ls: %s", errs)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 2, "%q", out)
	assert.Regexp(t, `^ID +STATE +LANG +NAME +EXECUTOR +SUBMITTED +DURATION +VERDICT$`, lines[0])
	assert.Regexp(t, fmt.Sprintf(`^%d +queued +python +never\.py +- +\S+ +- +-$`, id), lines[1])

	code, out, _ = durableRun(t, m, nil, "", "status", fmt.Sprint(id))
	require.Equal(t, 0, code)
	assert.Contains(t, out, "state:     queued\n")
	assert.Contains(t, out, fmt.Sprintf("id:        %d\n", id))

	code, out, errs = durableRun(t, m, nil, "", "cancel", fmt.Sprint(id))
	assert.Equal(t, 0, code, "cancel: %s", errs)
	assert.Equal(t, fmt.Sprintf("job %d cancelled\n", id), out)
	assert.Equal(t, "cancelled", durableStatus(t, m, nil, id).State)

	code, out, errs = durableRun(t, m, nil, "", "cancel", fmt.Sprint(id))
	assert.Equal(t, 255, code)
	assert.Empty(t, out)
	assert.Equal(t, fmt.Sprintf("reshjob: reshd: job %d has ended (cancelled)\n", id), errs)

	// ls lists queued and running jobs only, -all every one.
	_, out, _ = durableRun(t, m, nil, "", "ls")
	assert.Equal(t, 1, strings.Count(out, "\n"), "%q", out)
	_, out, _ = durableRun(t, m, nil, "", "ls", "-all", "-json")
	var jobs []proto.JobInfo
	require.NoError(t, json.Unmarshal([]byte(out), &jobs), "%q", out)
	require.Len(t, jobs, 1)
	assert.Equal(t, id, jobs[0].ID)
	// Attached, it ends as CANCELLED.
	code, out, errs = durableRun(t, m, nil, "", "attach", fmt.Sprint(id))
	assert.Equal(t, 119, code)
	assert.Empty(t, out)
	assert.True(t, strings.HasPrefix(errs, "reshjob: CANCELLED"), "%q", errs)
}

const sleeper = "import time\nprint('started', flush=True)\ntime.sleep(600)\n"

// A running job is listed and shown running, and cancel kills it: an
// attached reshjob ends with CANCELLED and 119.
func TestReshjobDurableRunningCancel(t *testing.T) {
	d := startJobsReshd(t)
	sandboxOK(t, d)
	id := durableSubmit(t, d, nil, "", writeProgram(t, "sleep.py", sleeper))
	durableWaitState(t, d, id, "running")
	require.Eventually(t, func() bool { return durableStatus(t, d, nil, id).StdoutLen == int64(len("started\n")) }, 30*time.Second, 50*time.Millisecond)
	j := durableStatus(t, d, nil, id)
	assert.Equal(t, "running", j.State)
	assert.NotEmpty(t, j.Executor, "running, with output: on an executor")

	attached := startAttach(t, d, id)
	_, out, _ := durableRun(t, d, nil, "", "ls")
	assert.Regexp(t, fmt.Sprintf(`\n%d +running +python +sleep\.py +\S+ +\S+ +\S+ +-\n`, id), out)

	code, out, errs := durableRun(t, d, nil, "", "cancel", fmt.Sprint(id))
	assert.Equal(t, 0, code, "cancel: %s", errs)
	assert.Equal(t, fmt.Sprintf("job %d cancelled\n", id), out)
	code, rest := attached.wait(t, 30*time.Second)
	assert.Equal(t, 119, code, "stderr %q", attached.stderr.String())
	assert.Empty(t, rest)
	assert.True(t, strings.HasPrefix(attached.stderr.String(), "reshjob: CANCELLED"), "%q", attached.stderr.String())
	assert.Equal(t, "cancelled", durableStatus(t, d, nil, id).State)
}

// startAttach starts reshjob attach ID against d and waits for the job's
// first line, started.
func startAttach(t *testing.T, d *daemon, id int64, opts ...string) *startedJob {
	t.Helper()
	j := &startedJob{stdout: make(chan string, 1)}
	j.cmd = exec.Command(filepath.Join(bin, "reshjob"), append(opts, reshjobArgs(t, d, "attach", fmt.Sprint(id))...)...)
	out, err := j.cmd.StdoutPipe()
	require.NoError(t, err)
	j.cmd.Stderr = &j.stderr
	require.NoError(t, j.cmd.Start())
	t.Cleanup(func() { _ = j.cmd.Process.Kill(); _ = j.cmd.Wait() })
	first := make(chan string, 1)
	go func() {
		br := bufio.NewReader(out)
		line, _ := br.ReadString('\n')
		first <- line
		rest, _ := io.ReadAll(br)
		j.stdout <- string(rest)
	}()
	select {
	case line := <-first:
		require.Equal(t, "started\n", line)
	case <-time.After(30 * time.Second):
		t.Fatal("attach: the job's first line did not come within 30s")
	}
	return j
}

// ^C to reshjob run cancels the job: 130, and the job is cancelled.
func TestReshjobDurableInterrupt(t *testing.T) {
	d := startJobsReshd(t)
	sandboxOK(t, d)
	j := &startedJob{stdout: make(chan string, 1)}
	j.cmd = exec.Command(filepath.Join(bin, "reshjob"), reshjobArgs(t, d, "run", writeProgram(t, "sleep.py", sleeper))...)
	j.cmd.Stdin = strings.NewReader("")
	out, err := j.cmd.StdoutPipe()
	require.NoError(t, err)
	j.cmd.Stderr = &j.stderr
	require.NoError(t, j.cmd.Start())
	t.Cleanup(func() { _ = j.cmd.Process.Kill(); _ = j.cmd.Wait() })
	br := bufio.NewReader(out)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "started\n", line)
	go func() {
		rest, _ := io.ReadAll(br)
		j.stdout <- string(rest)
	}()
	require.NoError(t, j.cmd.Process.Signal(syscall.SIGINT))
	code, _ := j.wait(t, 30*time.Second)
	assert.Equal(t, 130, code, "stderr %q", j.stderr.String())
	assert.True(t, strings.HasPrefix(j.stderr.String(), "reshjob: CANCELLED"), "%q", j.stderr.String())
	_, list, _ := durableRun(t, d, nil, "", "ls", "-all", "-json")
	var jobs []proto.JobInfo
	require.NoError(t, json.Unmarshal([]byte(list), &jobs), "%q", list)
	require.Len(t, jobs, 2) // sandboxOK's, and this one
	assert.Equal(t, "cancelled", jobs[0].State)
}

// A job belongs to the key that submitted it: another key does not see
// it (no job N), cannot attach to it nor cancel it, and lists nothing.
func TestReshjobDurableOwners(t *testing.T) {
	tlsOnly(t)
	skipWithout(t, "python3")
	// reshd's own RESH_HOME, whose keys (which see every job) are not the
	// users'; both users' keys are authorized.
	home := t.TempDir()
	other := filepath.Join(t.TempDir(), "other_ed25519")
	otherKey, _, err := auth.LoadOrCreateIdentity(other)
	require.NoError(t, err)
	mine, err := os.ReadFile(filepath.Join(os.Getenv("RESH_HOME"), auth.IdentityFile+".pub"))
	require.NoError(t, err)
	_, err = auth.AddAuthorizedKey(filepath.Join(home, auth.AuthorizedKeysFile), auth.PublicKey(otherKey), "other user")
	require.NoError(t, err)
	f, err := os.OpenFile(filepath.Join(home, auth.AuthorizedKeysFile), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.Write(mine)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	// The run's host key, though: known_hosts is the whole run's, and a
	// port this reshd gets may have been another test's reshd's.
	b, err := os.ReadFile(filepath.Join(os.Getenv("RESH_HOME"), auth.HostKeyFile))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(home, auth.HostKeyFile), b, 0o600))
	d := startReshdAt(t, "127.0.0.1:0", []string{"RESH_HOME=" + home}, "-store", filepath.Join(t.TempDir(), "jobs.db"))

	id := durableSubmit(t, d, nil, "", writeProgram(t, "never.py", sleeper))
	_, out, _ := durableRun(t, d, nil, "", "ls", "-all")
	assert.Contains(t, out, fmt.Sprintf("\n%d ", id), "the owner sees it")

	as := []string{"-i", other}
	code, out, errs := durableRun(t, d, as, "", "ls", "-all")
	assert.Equal(t, 0, code, "%q", errs)
	assert.Equal(t, "ID  STATE  LANG  NAME  EXECUTOR  SUBMITTED  DURATION  VERDICT\n", out)
	for _, cmd := range []string{"status", "cancel", "attach"} {
		code, out, errs = durableRun(t, d, as, "", cmd, fmt.Sprint(id))
		assert.Equal(t, 255, code, cmd)
		assert.Empty(t, out, cmd)
		assert.Equal(t, fmt.Sprintf("reshjob: reshd: no job %d\n", id), errs, cmd)
	}
	code, _, errs = durableRun(t, d, nil, "", "cancel", fmt.Sprint(id))
	assert.Equal(t, 0, code, "the owner cancels it: %s", errs)
}

// A reshd that predates durable jobs (here: one that keeps no jobs, an
// executor's) is reported as such or by its own words.
func TestReshjobDurableOlderServerWords(t *testing.T) {
	d := startJobsReshd(t)
	code, out, errs := durableRun(t, d, nil, "", "status", "999999")
	assert.Equal(t, 255, code)
	assert.Empty(t, out)
	assert.Equal(t, "reshjob: reshd: no job 999999\n", errs)
}

// durableCounter prints 0..n-1, a line every step seconds.
func durableCounter(t *testing.T, n int, step float64) (path, output string) {
	t.Helper()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%d\n", i)
	}
	src := fmt.Sprintf("import time\nfor i in range(%d):\n    print(i, flush=True)\n    time.sleep(%g)\n", n, step)
	return writeProgram(t, "count.py", src), b.String()
}

// startRun starts reshjob opts HOST run args in the background.
func startRun(t *testing.T, d *daemon, opts []string, args ...string) (cmd *exec.Cmd, stdout, stderr *watched, done chan struct{}) {
	t.Helper()
	cmd = exec.Command(filepath.Join(bin, "reshjob"), append(append([]string{}, opts...), reshjobArgs(t, d, append([]string{"run"}, args...)...)...)...)
	stdout, stderr = newWatched(), newWatched()
	cmd.Stdin = strings.NewReader("")
	cmd.Stdout, cmd.Stderr = stdout, stderr
	require.NoError(t, cmd.Start())
	done = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	return cmd, stdout, stderr, done
}

// waitDone waits for the background reshjob's end and returns its status.
func waitDone(t *testing.T, cmd *exec.Cmd, done chan struct{}, within time.Duration) int {
	t.Helper()
	select {
	case <-done:
	case <-time.After(within):
		t.Fatalf("reshjob did not end within %v", within)
	}
	return cmd.ProcessState.ExitCode()
}

// run follows its job across a master killed (-9) and started again: it
// attaches again from the bytes it wrote, and the output is whole, with no
// gap and no duplicate (the executor kept the job running).
func TestReshjobDurableRunSurvivesMasterRestart(t *testing.T) {
	skipWithout(t, "bwrap", "python3")
	flags := []string{"-master", "-executor-timeout", "3s", "-store", filepath.Join(t.TempDir(), "jobs.db")}
	m := startReshd(t, flags...)
	startExecutor(t, m, "keeper")
	prog, want := durableCounter(t, 40, 0.1)
	cmd, stdout, stderr, done := startRun(t, m, nil, prog)
	stdout.wait(t, 30*time.Second, "3\n", stderr)
	require.NoError(t, m.cmd.Process.Signal(syscall.SIGKILL))
	_ = m.cmd.Wait()
	m2 := startReshdAt(t, m.addr, nil, flags...)
	m2.waitJoined(t, "keeper")
	code := waitDone(t, cmd, done, 60*time.Second)
	assert.Equal(t, 0, code, "stderr %q", stderr.String())
	assert.Equal(t, want, stdout.String(), "the whole output, no gap, no duplicate")
}

// When the master does not come back within -give-up, run says how to
// attach again, from where it stopped, and exits 255; that command, once
// the master is back, gives the rest.
func TestReshjobDurableRunLost(t *testing.T) {
	skipWithout(t, "bwrap", "python3")
	flags := []string{"-master", "-executor-timeout", "3s", "-store", filepath.Join(t.TempDir(), "jobs.db")}
	m := startReshd(t, flags...)
	startExecutor(t, m, "keeper")
	prog, want := durableCounter(t, 40, 0.1)
	cmd, stdout, stderr, done := startRun(t, m, []string{"-give-up", "1s"}, prog)
	stdout.wait(t, 30*time.Second, "3\n", stderr)
	require.NoError(t, m.cmd.Process.Signal(syscall.SIGKILL))
	_ = m.cmd.Wait()
	code := waitDone(t, cmd, done, 60*time.Second)
	assert.Equal(t, 255, code)
	host, port, _ := strings.Cut(m.addr, ":")
	hint := regexp.MustCompile(`^reshjob: lost the connection to ` + regexp.QuoteMeta(host) + `; job (\d+) goes on: reshjob -p ` + port +
		`( -insecure)? ` + regexp.QuoteMeta(host) + ` attach -from (\d+):0 (\d+)\n$`).FindStringSubmatch(stderr.String())
	require.NotNil(t, hint, "stderr %q", stderr.String())
	assert.Equal(t, hint[1], hint[4])
	assert.Equal(t, strconv.Itoa(len(stdout.String())), hint[3], "-from is what run wrote")

	m2 := startReshdAt(t, m.addr, nil, flags...)
	m2.waitJoined(t, "keeper")
	args := strings.Fields(strings.TrimPrefix(stderr.String()[strings.Index(stderr.String(), "goes on: ")+len("goes on: "):], "reshjob "))
	if !m.insecure {
		args = append([]string{"-known-only"}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rest := exec.CommandContext(ctx, filepath.Join(bin, "reshjob"), args...)
	var out, errb strings.Builder
	rest.Stdout, rest.Stderr = &out, &errb
	require.NoError(t, rest.Run(), "reshjob %q: %s", args, errb.String())
	assert.Equal(t, want, stdout.String()+out.String(), "run's output, then attach's: the whole output")
}
