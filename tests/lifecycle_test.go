package tests

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// groupMembers lists the live processes (zombies left out: their parent
// may be gone, and PID 1 may not reap) of process group pgid.
func groupMembers(pgid int) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitGroupGone waits until process group pgid has no live process.
func waitGroupGone(t *testing.T, pgid int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		left := groupMembers(pgid)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, p := range left {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
			t.Fatalf("processes %v of the session (group %d) still alive after %v", left, pgid, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readPidFile waits for the remote command to write its pid to path.
func readPidFile(t *testing.T, path string, within time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		b, err := os.ReadFile(path)
		if err == nil && bytes.HasSuffix(b, []byte("\n")) {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil || pid <= 1 {
				t.Fatalf("pid file %s holds %q", path, b)
			}
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("the remote command did not write %s within %v", path, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// exitCode waits for cmd (started) and returns its exit status, failing
// the test after within.
func exitCode(t *testing.T, cmd *exec.Cmd, within time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(within):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("resh did not exit within %v", within)
		return -1
	}
}

// `resh HOST 'yes x' | head -1`: once the reader of resh's output is gone,
// resh exits 141 at once and the remote command's writes fail, so it ends
// too, as through ssh; on a pty the command is hung up.
func TestReaderGoneEndsRemoteCommand(t *testing.T) {
	d := startReshd(t)
	if bash, err := exec.LookPath("bash"); err == nil {
		t.Run("pipeline", func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pid")
			args := d.args(d.addr, "echo $$ > "+pidFile+"; exec yes x")
			quoted := make([]string, len(args))
			for i, a := range args {
				quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
			}
			script := fmt.Sprintf(`%s %s | head -1; echo "status ${PIPESTATUS[0]}"`, filepath.Join(bin, "resh"), strings.Join(quoted, " "))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			out, err := exec.CommandContext(ctx, bash, "-c", script).CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if string(out) != "x\nstatus 141\n" {
				t.Errorf("output %q, want the first line and resh's status 141", out)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("the pipeline took %v", took)
			}
			waitGroupGone(t, readPidFile(t, pidFile, time.Second), 5*time.Second)
		})
	}
	for _, c := range []struct {
		name   string
		flags  []string
		stderr bool // close resh's stderr, not its stdout
		cmd    string
	}{
		{"stdout", nil, false, "exec yes x"},
		{"stderr", nil, true, "exec yes x >&2"},
		{"pty", []string{"-tt"}, false, "exec yes x"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pid")
			args := append(slicesClone(c.flags), d.args(d.addr, "echo $$ > "+pidFile+"; "+c.cmd)...)
			cmd := reshCommand(context.Background(), args...)
			var pipe io.ReadCloser
			var err error
			if c.stderr {
				pipe, err = cmd.StderrPipe()
			} else {
				pipe, err = cmd.StdoutPipe()
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if line, err := bufio.NewReader(pipe).ReadString('\n'); err != nil || strings.TrimRight(line, "\r\n") != "x" {
				t.Fatalf("first line %q, %v", line, err)
			}
			pid := readPidFile(t, pidFile, 5*time.Second)
			pipe.Close() // the reader goes away
			if code := exitCode(t, cmd, 10*time.Second); code != 141 {
				t.Errorf("resh exited %d, want 141", code)
			}
			waitGroupGone(t, pid, 5*time.Second)
		})
	}
}

// slicesClone copies s (nil stays nil).
func slicesClone(s []string) []string { return append([]string(nil), s...) }

// kill -9 of reshd: the session's processes die with it, single commands
// and compound ones, with and without a pty; and resh, finding its
// reconnections refused, gives up with 255 after -give-up.
func TestSessionDiesWithReshd(t *testing.T) {
	for _, c := range []struct {
		name  string
		flags []string
		cmd   string
	}{
		{"single", []string{"-T"}, "exec sleep 100"},
		{"compound", []string{"-T"}, "sleep 100 & sleep 100"},
		{"single pty", []string{"-tt"}, "exec sleep 100"},
		{"compound pty", []string{"-tt"}, "sleep 100 & sleep 100; true"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := startReshd(t)
			pidFile := filepath.Join(t.TempDir(), "pid")
			args := append(append(slicesClone(c.flags), "-give-up", "1s"), d.args(d.addr, "echo $$ > "+pidFile+"; "+c.cmd)...)
			cmd := reshCommand(context.Background(), args...)
			var errb bytes.Buffer
			cmd.Stderr = &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pgid := readPidFile(t, pidFile, 10*time.Second)
			if c.cmd != "exec sleep 100" {
				// Both sleeps run before reshd dies.
				deadline := time.Now().Add(5 * time.Second)
				for len(groupMembers(pgid)) < 2 && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
			}
			if err := d.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			waitGroupGone(t, pgid, 10*time.Second)
			if code := exitCode(t, cmd, 20*time.Second); code != 255 {
				t.Errorf("resh exited %d, want 255; stderr: %s", code, errb.String())
			}
			if !strings.Contains(errb.String(), "is gone") || strings.Contains(errb.String(), "retrying") {
				t.Errorf("stderr %q: want the one line saying the server is gone (no terminal: no progress)", errb.String())
			}
		})
	}
}

// On a terminal resh says, once, that reshd refuses and that it retries,
// then that it is gone.
func TestGiveUpNoticeOnTerminal(t *testing.T) {
	d := startReshd(t)
	tm := startTerm(t, 24, 80, append([]string{"-T", "-give-up", "2s"}, d.args(d.addr, "echo ready; sleep 100")...)...)
	tm.expect("ready", 10*time.Second)
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	tm.expect("refused the connection; retrying for 2s...", 10*time.Second)
	tm.expect("is gone", 20*time.Second)
	if code := tm.wait(10 * time.Second); code != 255 {
		t.Errorf("resh exited %d, want 255", code)
	}
	tm.mu.Lock()
	rest := tm.out.String()
	tm.mu.Unlock()
	if strings.Contains(rest, "retrying") {
		t.Errorf("the notice came more than once: %q", rest)
	}
}

// A reshd killed with -9 leaves its transfer socket directory; the next
// reshd removes it, and only the directories of dead processes of this
// user.
func TestStaleSocketDirsRemoved(t *testing.T) {
	tmp := t.TempDir()
	env := []string{"TMPDIR=" + tmp}
	d := startReshdAt(t, "127.0.0.1:0", env)
	cmd := reshCommand(context.Background(), append([]string{"-give-up", "1s"}, d.args(d.addr, `echo "$RESH_SOCKET"; exec sleep 100`)...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	stale := filepath.Dir(strings.TrimSpace(line))
	if filepath.Dir(stale) != tmp {
		t.Fatalf("socket %q not under TMPDIR %s", line, tmp)
	}
	dead := d.cmd.Process.Pid
	_ = d.cmd.Process.Kill()
	_ = d.cmd.Wait()
	if _, err := os.Stat(stale); err != nil {
		t.Fatalf("the killed reshd's directory: %v", err)
	}
	// What must stay: a live process's directory, a link, other names.
	keep := []string{
		filepath.Join(tmp, fmt.Sprintf("resh-%d-1", os.Getpid())),
		filepath.Join(tmp, "resh-123"),
		filepath.Join(tmp, "resh-x-1"),
	}
	for _, k := range keep {
		if err := os.Mkdir(k, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(tmp, fmt.Sprintf("resh-%d-2", dead))
	if err := os.Symlink(keep[0], link); err != nil {
		t.Fatal(err)
	}
	keep = append(keep, link)

	startReshdAt(t, "127.0.0.1:0", env)
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the dead reshd's directory %s: %v, want removed", stale, err)
	}
	for _, k := range keep {
		if _, err := os.Lstat(k); err != nil {
			t.Errorf("%s: %v, want kept", k, err)
		}
	}
}

// reshd started with SIGHUP ignored (nohup) or signals blocked gives its
// sessions every signal at its default action and none blocked: a command
// (run by sh, dash, which clears its mask itself) and a login shell (bash,
// which does not).
func TestSessionSignalsUnderNohup(t *testing.T) {
	wraps := map[string][]string{"ignored": {"sh", "-c", `trap "" HUP; exec "$@"`, "sh"}}
	if perl, err := exec.LookPath("perl"); err == nil {
		wraps["blocked"] = []string{perl, "-e", `use POSIX; sigprocmask(SIG_BLOCK, POSIX::SigSet->new(SIGHUP, SIGUSR1, SIGTERM)); $SIG{HUP} = "IGNORE"; exec @ARGV or die "exec: $!"`}
	}
	var env []string
	bash, err := exec.LookPath("bash")
	if err == nil {
		env = []string{"SHELL=" + bash}
	}
	const show = `grep -E "^Sig(Ign|Blk)" /proc/self/status`
	const want = "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
	sigLines := func(out string) string {
		var b strings.Builder
		for _, l := range strings.SplitAfter(out, "\n") {
			if strings.HasPrefix(l, "Sig") {
				b.WriteString(l)
			}
		}
		return b.String()
	}
	for name, wrap := range wraps {
		t.Run(name, func(t *testing.T) {
			d := startReshdVia(t, wrap, "127.0.0.1:0", env)
			r := resh(t, "", "", d.args(d.addr, show)...)
			if r.code != 0 || r.stdout != want {
				t.Errorf("command: masks %q (status %d, stderr %q), want %q", r.stdout, r.code, r.stderr, want)
			}
			if bash != "" {
				r := resh(t, "", show+"\n", d.args(d.addr)...)
				if got := sigLines(r.stdout); r.code != 0 || got != want {
					t.Errorf("login shell %s: masks %q (status %d, stderr %q), want %q", bash, got, r.code, r.stderr, want)
				}
			}
			// reshd itself still ignores the hangup.
			if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			if r := resh(t, "", "", d.args(d.addr, "echo alive")...); r.stdout != "alive\n" {
				t.Errorf("after SIGHUP: %q %q %d", r.stdout, r.stderr, r.code)
			}
		})
	}
}
