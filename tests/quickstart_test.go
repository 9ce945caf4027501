package tests

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// quickStart returns the first command of README.md's Quick start, the one
// that builds, starts reshd and runs a first remote command, and the
// command that stops reshd.
func quickStart(t *testing.T) (start, stop string) {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	section := string(readme)
	i := strings.Index(section, "## Quick start")
	require.GreaterOrEqual(t, i, 0, "README.md has no Quick start")
	section = section[i:]
	section = section[:strings.Index(section[3:], "\n## ")+3]
	m := regexp.MustCompile("(?m)^# 1\\..*\n(.+)$").FindStringSubmatch(section)
	require.NotNil(t, m, "the Quick start's command 1")
	cmds := regexp.MustCompile("(?m)^[^#\n`].*$").FindAllString(section[strings.Index(section, "```sh"):strings.LastIndex(section, "```")], -1)
	assert.Equal(t, []string{m[1], "./test.sh"}, cmds, "the Quick start has exactly two commands")
	s := regexp.MustCompile("`(kill [^`]+)`").FindStringSubmatch(section)
	require.NotNil(t, s, "the Quick start says how to stop reshd")
	return m[1], s[1]
}

// The Quick start's command 1, run twice on one machine with a rebuild in
// between, works both times: the second run stops the first reshd and
// resh talks to the new one; resh's output has none of reshd's log; the
// README's stop command stops it.
func TestQuickStartTwice(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("checks the running reshd's executable in /proc")
	}
	start, stop := quickStart(t)
	const build = "go build -o bin/ ./cmd/... && "
	require.True(t, strings.HasPrefix(start, build), "command 1 %q starts by building into bin/", start)
	// The tests built the programs already: each run copies them to bin/
	// afresh (new files, as a rebuild makes), on a port of this test's own.
	port := freeLoopbackPort(t)
	start = strings.TrimPrefix(start, build)
	start = strings.Replace(start, "bin/reshd ", "bin/reshd -listen 127.0.0.1:"+port+" ", 1)
	start = strings.Replace(start, "bin/resh localhost ", "bin/resh localhost:"+port+" ", 1)
	httpPort := freeLoopbackPort(t)
	require.Contains(t, start, "-http 127.0.0.1:4280 ", "command 1 serves the dashboard")
	start = strings.Replace(start, "-http 127.0.0.1:4280 ", "-http 127.0.0.1:"+httpPort+" ", 1)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	require.NoError(t, os.Mkdir(home, 0o700))
	env := append(os.Environ(), "HOME="+home, "RESH_HOME="+filepath.Join(home, ".resh"))
	pidFile := filepath.Join(dir, "bin", "reshd.pid")
	t.Cleanup(func() { stopByPIDFile(t, pidFile) })

	var pids []int
	for run := 1; run <= 2; run++ {
		rebuild(t, filepath.Join(dir, "bin"))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, "bash", "-c", start)
		cmd.Dir, cmd.Env = dir, env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		cancel()
		require.NoError(t, err, "run %d: stdout %q, stderr %q", run, stdout.String(), stderr.String())
		out := stdout.String()
		assert.Regexp(t, `(?m)^reshd: listening on 127\.0\.0\.1:`+port+` \(pid \d+, log in bin/reshd\.log\)$`, out, "run %d", run)
		assert.Contains(t, out, "reshd: dashboard on http://127.0.0.1:"+httpPort+"/\n", "run %d", run)
		if resp, err := http.Get("http://127.0.0.1:" + httpPort + "/healthz"); assert.NoError(t, err, "run %d: the dashboard", run) {
			assert.Equal(t, http.StatusOK, resp.StatusCode, "run %d: /healthz", run)
			resp.Body.Close()
		}
		assert.Contains(t, out, "\nLinux ", "run %d: uname -sr", run)
		assert.Regexp(t, `(?m)^total \d+$`, out, "run %d: ls -l", run)
		assert.NotContains(t, out+stderr.String(), "level=", "run %d: reshd's log in resh's output", run)
		pid := readPID(t, pidFile)
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		require.NoError(t, err)
		assert.Equal(t, filepath.Join(dir, "bin", "reshd"), exe, "run %d: reshd runs the binary just built", run)
		pids = append(pids, pid)
	}
	assert.NotEqual(t, pids[0], pids[1])
	assert.False(t, processAlive(pids[0]), "the first reshd is gone")
	log, err := os.ReadFile(filepath.Join(dir, "bin", "reshd.log"))
	require.NoError(t, err)
	assert.Contains(t, string(log), "stopping the previous reshd")

	cmd := exec.Command("bash", "-c", stop)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s: %s", stop, out)
	require.Eventually(t, func() bool { return !processAlive(pids[1]) }, 15*time.Second, 10*time.Millisecond, "reshd stops")
	assert.NoFileExists(t, pidFile, "reshd removes its pid file")
}

// A reshd started on a port another reshd holds exits 1 with one line
// naming that reshd and its pid.
func TestReshdBusyPortNamesHolder(t *testing.T) {
	d := startReshd(t)
	cmd := exec.Command(filepath.Join(bin, "reshd"), "-insecure", "-listen", d.addr)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "%s", out)
	assert.Equal(t, 1, ee.ExitCode())
	want := fmt.Sprintf("address %s already in use by reshd (pid %d)", d.addr, d.cmd.Process.Pid)
	if runtime.GOOS != "linux" {
		want = fmt.Sprintf("address %s already in use", d.addr)
	}
	assert.Contains(t, string(out), want)
	assert.Equal(t, 1, strings.Count(string(out), "\n"), "one line: %q", out)
}

// rebuild puts fresh copies of the built programs in dir, as go build
// does: new files replacing the old ones.
func rebuild(t *testing.T, dir string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for _, name := range []string{"resh", "reshd", "lcat", "ltee"} {
		b, err := os.ReadFile(filepath.Join(bin, name))
		require.NoError(t, err)
		tmp := filepath.Join(dir, "."+name)
		require.NoError(t, os.WriteFile(tmp, b, 0o755))
		require.NoError(t, os.Rename(tmp, filepath.Join(dir, name)))
	}
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	return pid
}

// processAlive reports whether pid runs (a zombie does not).
func processAlive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// stopByPIDFile stops the reshd a failed test left running.
func stopByPIDFile(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || !processAlive(pid) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for processAlive(pid) && time.Now().Before(deadline) {
		<-tick.C
	}
	if processAlive(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("reshd %d did not stop on SIGTERM", pid)
	}
}

// freeLoopbackPort returns a loopback port nobody listens on now.
func freeLoopbackPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	require.NoError(t, ln.Close())
	return port
}
