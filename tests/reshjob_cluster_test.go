package tests

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/auth"
)

// startExecutorWithLanguages is startExecutor with languages as the
// executor's RESH_HOME/languages file.
func startExecutorWithLanguages(t *testing.T, master *daemon, name, languages string) *daemon {
	t.Helper()
	home := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(home, "languages"), []byte(languages), 0o644))
	key, _, err := auth.LoadOrCreateIdentity(filepath.Join(home, auth.HostKeyFile))
	require.NoError(t, err)
	_, err = auth.AddAuthorizedKey(filepath.Join(os.Getenv("RESH_HOME"), auth.ExecutorsFile), auth.PublicKey(key), "test executor "+name)
	require.NoError(t, err)
	argv := []string{filepath.Join(bin, "reshd"), "-join", master.addr, "-name", name}
	if master.insecure {
		argv = append(argv, "-insecure")
	}
	d, _ := startLogged(t, argv, []string{"RESH_HOME=" + home, "HOME=" + home}, joiningRE)
	d.home = home
	d.insecure = master.insecure
	master.waitJoined(t, name)
	return d
}

// startedJob is a reshjob run in the background whose program said it
// started (its first line of output).
type startedJob struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout chan string // the rest of stdout, at the end
	stderr strings.Builder
}

// startJob starts `reshjob HOST run runArgs...` against d and waits until
// the program's first line on stdout is started.
func startJob(t *testing.T, d *daemon, runArgs ...string) *startedJob {
	t.Helper()
	j := &startedJob{stdout: make(chan string, 1)}
	j.cmd = exec.Command(filepath.Join(bin, "reshjob"), reshjobArgs(t, d, append([]string{"run"}, runArgs...)...)...)
	var err error
	j.stdin, err = j.cmd.StdinPipe()
	require.NoError(t, err)
	out, err := j.cmd.StdoutPipe()
	require.NoError(t, err)
	j.cmd.Stderr = &j.stderr
	require.NoError(t, j.cmd.Start())
	t.Cleanup(func() { _ = j.cmd.Process.Kill(); _ = j.cmd.Wait() })
	// A stored job's stdin is whole before it runs: none here.
	require.NoError(t, j.stdin.Close())
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
		require.Equal(t, "started\n", line, "reshjob %q did not start its program", runArgs)
	case <-time.After(30 * time.Second):
		t.Fatalf("reshjob %q: the program did not start within 30s", runArgs)
	}
	return j
}

// wait waits (at most within) for reshjob to end and returns its status
// and the rest of its stdout.
func (j *startedJob) wait(t *testing.T, within time.Duration) (int, string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- j.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(within):
		t.Fatalf("reshjob did not end within %v", within)
	}
	return j.cmd.ProcessState.ExitCode(), <-j.stdout
}

// Through a master with two local executors, a program runs on one that
// has its language, named in -json: two at once take both executors.
func TestReshjobClusterLandsOnExecutors(t *testing.T) {
	skipWithout(t, "bwrap", "python3")
	m := startMaster(t, []string{"-local", "2"}, "local-1", "local-2")
	// Two programs at once go to the two executors (the one with the
	// most free slots first).
	src := writeProgram(t, "wait.py", "import time\nprint('started', flush=True)\ntime.sleep(1)\nprint('done')\n")
	a := startJob(t, m, "-json", src)
	b := startJob(t, m, "-json", src)
	var executors []string
	for _, j := range []*startedJob{a, b} {
		code, out := j.wait(t, 30*time.Second)
		assert.Equal(t, 0, code, "stderr %q", j.stderr.String())
		line, obj, _ := strings.Cut(out, "\n")
		assert.Equal(t, "done", line)
		var r jobReport
		require.NoError(t, json.Unmarshal([]byte(obj), &r), "%q", out)
		assert.Equal(t, "OK", r.Verdict)
		executors = append(executors, r.Executor)
	}
	slices.Sort(executors)
	assert.Equal(t, []string{"local-1", "local-2"}, executors)
}

// Only the executor whose languages file adds awk gets the awk programs;
// a language of that file whose interpreter no executor has is refused at
// once, naming it and the languages there are.
func TestReshjobClusterLanguagePlacement(t *testing.T) {
	skipWithout(t, "bwrap", "awk")
	m := startMaster(t, nil)
	startExecutor(t, m, "plain")
	startExecutorWithLanguages(t, m, "awker", `# languages of the test
[awk]
extensions = .awk
run = awk -f {source}

[ghost]
extensions = .ghost
run = no-such-interpreter-for-resh {source}
`)
	prog := writeProgram(t, "sum.awk", "{ s += $1 } END { print \"sum\", s, \"n\", n }\n")
	for range 3 {
		// reshjob knows the built-in extensions only: -lang names the others.
		r := submitJob(t, m, strings.NewReader("1\n2\n3\n"), "-lang", "awk", prog, "n=7")
		if r.code == 125 {
			t.Skipf("the executor cannot build the sandbox here: %s", r.stderr)
		}
		assert.Equal(t, 0, r.code, "stderr %q", r.stderr)
		assert.Equal(t, "sum 6 n 7\n", r.stdout)
		assert.Equal(t, "awker", r.report.Executor)
	}

	start := time.Now()
	code, stdout, stderr := runReshjob(t, m, "", "run", "-lang", "ghost", writeProgram(t, "x.ghost", "anything\n"))
	assert.Equal(t, 255, code)
	assert.Empty(t, stdout)
	have, ok := strings.CutPrefix(stderr, "reshjob: reshd: no executor has the language ghost (the executors have: ")
	require.True(t, ok, "%q", stderr)
	assert.Regexp(t, `^awk, c, .*python, sh\)\n$`, have)
	assert.NotContains(t, have, "ghost")
	assert.Less(t, time.Since(start), 5*time.Second, "refused at once")
}

// A job whose executor is killed (SIGKILL) while the program runs, on a
// master that does not retry (-job-retries 0), ends once the master gives
// the executor up (-executor-timeout 3s) with EXECUTOR_LOST (120) and one
// line saying so; nothing of the program is left. (With retries, the job
// runs again elsewhere: tests/jobs_crash_test.go.)
func TestReshjobClusterExecutorKilled(t *testing.T) {
	skipWithout(t, "bwrap")
	m := startMaster(t, []string{"-executor-timeout", "3s", "-job-retries", "0"})
	e := startExecutor(t, m, "doomed")
	marker := newMarker()
	j := startJob(t, m, writeProgram(t, "long.sh", "echo started\nsleep \"1000.$1\"\n"), marker)
	// It said it started; its sleep comes next.
	require.Eventually(t, func() bool { return len(processesWith("sleep 1000."+marker)) > 0 }, 10*time.Second, 10*time.Millisecond,
		"the program's sleep did not start")
	require.NoError(t, e.cmd.Process.Kill())
	code, out := j.wait(t, 30*time.Second)
	assert.Equal(t, 120, code)
	assert.Empty(t, out)
	assert.Contains(t, j.stderr.String(), "reshjob: EXECUTOR_LOST")
	require.Eventually(t, func() bool { return len(processesWith(marker)) == 0 }, 10*time.Second, 20*time.Millisecond,
		"the program outlived its executor: %q", processesWith(marker))
}
