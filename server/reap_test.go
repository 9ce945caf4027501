package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"resh/connection"
	"resh/proto"
)

// localExit runs command with sh -c in dir, as reshd runs it, and returns
// the Exit that its status gives.
func localExit(t *testing.T, dir, command string) proto.Exit {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Dir = dir
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return exitOf(cmd.ProcessState.Sys().(syscall.WaitStatus), nil)
}

// Exit reports the command's status as the shell saw it: code, signal and
// core dump, reaped through the poller.
func TestExitStatuses(t *testing.T) {
	home := t.TempDir() // the commands' working directory: cores land here
	t.Setenv("HOME", home)
	srv := startServer(t, nil)
	for _, tc := range []struct {
		command string
		want    proto.Exit
	}{
		{"exit 0", proto.Exit{}},
		{"exit 3", proto.Exit{Code: 3}},
		{"exit 255", proto.Exit{Code: 255}},
		{"exit 256", proto.Exit{}},
		{"kill -TERM $$", proto.Exit{Signal: 15}},
		{"kill -KILL $$", proto.Exit{Signal: 9}},
		{"kill -HUP $$", proto.Exit{Signal: 1}},
		{"ulimit -c 0; kill -QUIT $$", proto.Exit{Signal: 3}},
		// A core dump where the system allows it: the same as a local run.
		{"ulimit -c unlimited 2>/dev/null; kill -SEGV $$", localExit(t, home, "ulimit -c unlimited 2>/dev/null; kill -SEGV $$")},
		{"ulimit -c unlimited 2>/dev/null; kill -ABRT $$", localExit(t, home, "ulimit -c unlimited 2>/dev/null; kill -ABRT $$")},
	} {
		c := dial(t, srv, proto.Hello{Command: tc.command}, nil)
		c.started()
		readAll(t, c.stdout)
		if got := c.exit(); got != tc.want {
			t.Errorf("%s: Exit %+v, want %+v", tc.command, got, tc.want)
		}
		c.close()
	}
}

func TestExitOf(t *testing.T) {
	for _, tc := range []struct {
		ws   syscall.WaitStatus
		err  error
		want proto.Exit
	}{
		{0, nil, proto.Exit{}},
		{7 << 8, nil, proto.Exit{Code: 7}},
		{syscall.WaitStatus(syscall.SIGINT), nil, proto.Exit{Signal: 2}},
		{syscall.WaitStatus(syscall.SIGSEGV) | 0x80, nil, proto.Exit{Signal: 11, Core: true}},
		{0, errors.New("wait failed"), proto.Exit{Code: 255}},
	} {
		if got := exitOf(tc.ws, tc.err); got != tc.want {
			t.Errorf("exitOf(%#x, %v) = %+v, want %+v", uint32(tc.ws), tc.err, got, tc.want)
		}
	}
}

// A command that leaves a child behind and exits is reaped at once, and
// only it: the child lives on (not waited for, not reaped by reshd).
func TestBackgroundChildOutlivesCommand(t *testing.T) {
	srv := startServer(t, nil)
	start := time.Now()
	c := dial(t, srv, proto.Hello{Command: "sleep 30 >/dev/null 2>&1 & echo $!; exit 7"}, nil)
	c.started()
	out := readAll(t, c.stdout)
	if e := c.exit(); e.Code != 7 || e.Signal != 0 {
		t.Errorf("Exit = %+v, want code 7", e)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the session took %v: it waited for the background child", d)
	}
	var pid int
	if _, err := fmt.Sscanf(out, "%d", &pid); err != nil || pid <= 0 {
		t.Fatalf("output %q: %v", out, err)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Errorf("the background child %d is gone: %v", pid, err)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// A background child that keeps the output open holds the session until it
// closes it: its output comes before Exit, which carries the command's own
// status.
func TestBackgroundChildOutputPrecedesExit(t *testing.T) {
	srv := startServer(t, nil)
	c := dial(t, srv, proto.Hello{Command: "(sleep 0.3; echo late; echo late-err >&2) & echo early; exit 4"}, nil)
	c.started()
	if got := readAll(t, c.stdout); got != "early\nlate\n" {
		t.Errorf("stdout %q", got)
	}
	if got := readAll(t, c.stderr); got != "late-err\n" {
		t.Errorf("stderr %q", got)
	}
	if e := c.exit(); e.Code != 4 {
		t.Errorf("Exit = %+v, want code 4", e)
	}
}

// Output that comes in bursts, with pauses in between, arrives whole: each
// burst is copied by a goroutine that ends when the pipe is empty.
func TestOutputInBursts(t *testing.T) {
	srv := startServer(t, nil)
	const bursts, size = 6, 100000
	c := dial(t, srv, proto.Hello{Command: fmt.Sprintf("for i in $(seq %d); do head -c %d /dev/zero | tr '\\0' o; head -c %d /dev/zero | tr '\\0' e >&2; sleep 0.05; done", bursts, size, size/2)}, nil)
	c.started()
	var wg sync.WaitGroup
	var stdout, stderr string
	wg.Add(1)
	go func() { defer wg.Done(); stderr = readAll(t, c.stderr) }()
	stdout = readAll(t, c.stdout)
	wg.Wait()
	if len(stdout) != bursts*size || strings.Trim(stdout, "o") != "" {
		t.Errorf("stdout: %d bytes, want %d o's", len(stdout), bursts*size)
	}
	if len(stderr) != bursts*size/2 || strings.Trim(stderr, "e") != "" {
		t.Errorf("stderr: %d bytes, want %d e's", len(stderr), bursts*size/2)
	}
	if e := c.exit(); e.Code != 0 {
		t.Errorf("Exit = %+v", e)
	}
}

// Many sessions at once each get their own command's status, and every
// command is reaped: none is left a zombie.
func TestManySessionsReaped(t *testing.T) {
	srv := startServer(t, nil)
	const n = 24
	var (
		cs    []*client
		pids  []int
		wants []proto.Exit
	)
	for i := range n {
		command := fmt.Sprintf("sleep 0.%d; exit %d", i%5, i)
		want := proto.Exit{Code: i}
		if i%3 == 0 {
			sig := []int{1, 9, 15}[i%9/3]
			command = fmt.Sprintf("sleep 0.%d; kill -%d $$", i%5, sig)
			want = proto.Exit{Signal: sig}
		}
		c := dial(t, srv, proto.Hello{Command: command}, nil)
		cs, pids, wants = append(cs, c), append(pids, c.started().PID), append(wants, want)
	}
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.stdout.SetReadDeadline(time.Now().Add(testTimeout))
			_, _ = io.Copy(io.Discard, c.stdout)
			_ = c.control.SetReadDeadline(time.Now().Add(testTimeout))
			var e proto.Exit
			if err := proto.Expect(c.control, proto.TypeExit, &e); err != nil {
				t.Errorf("session %d: waiting for Exit: %v", i, err)
			} else if e != wants[i] {
				t.Errorf("session %d: Exit %+v, want %+v", i, e, wants[i])
			}
		}()
	}
	wg.Wait()
	for i, pid := range pids {
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); !errors.Is(err, syscall.ECHILD) {
			t.Errorf("session %d: process %d not reaped (wait4: %v)", i, pid, err)
		}
	}
}

// A command that ignores SIGHUP is killed KillGrace after its client is
// gone, and reaped.
func TestHangupThenKill(t *testing.T) {
	srv := startServer(t, &Config{DetachTimeout: 200 * time.Millisecond, KillGrace: 300 * time.Millisecond})
	fd := &faultyDial{}
	c := dial(t, srv, proto.Hello{Command: "trap '' HUP; echo ready; sleep 30"},
		&connection.Config{Dial: fd.dial, ResumeTimeout: 5 * time.Second, DrainTimeout: 100 * time.Millisecond})
	pid := c.started().PID
	var out bytes.Buffer
	until(t, c.stdout, &out, "ready\n")
	fd.cut()
	waitFor(t, "the command to be killed and reaped", func() bool {
		var ws syscall.WaitStatus
		_, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		return errors.Is(err, syscall.ECHILD)
	})
	waitFor(t, "the session to end", func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return len(srv.sessions) == 0
	})
}

// No goroutine per idle session waits on the command, its outputs or its
// transfer socket, and no OS thread is blocked on it.
func TestIdleSessionGoroutines(t *testing.T) {
	srv := startServer(t, nil)
	c := dial(t, srv, proto.Hello{Command: "echo up; exec sleep 30"}, nil)
	c.started()
	var out bytes.Buffer
	until(t, c.stdout, &out, "up\n")
	_ = c.stdin.Close()
	var stacks string
	waitFor(t, "the session to go idle", func() bool {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		return !strings.Contains(stacks, "server.copyIn")
	})
	if !strings.Contains(stacks, "server.(*session).serveControl") {
		t.Errorf("no goroutine reads the control stream:\n%s", stacks)
	}
	for _, f := range []string{"server.(*output).copy", "server.(*broker).serve", "syscall.Wait4", "unix.Waitid", "server.(*exitWatch)"} {
		if strings.Contains(stacks, f) {
			t.Errorf("an idle session has a goroutine in %s", f)
		}
	}
	c.send(proto.TypeSignal, proto.Signal{Name: "TERM"})
	if e := c.exit(); e.Signal != 15 {
		t.Errorf("Exit = %+v, want signal 15", e)
	}
}
