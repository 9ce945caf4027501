package server

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseGuardLine(t *testing.T) {
	for _, c := range []struct {
		line string
		op   byte
		pgid int
		ok   bool
	}{
		{"+1234", '+', 1234, true},
		{"-1234", '-', 1234, true},
		{"+1", 0, 0, false}, // kill(-1): every process
		{"+0", 0, 0, false}, // kill(0): the guardian's own group
		{"+-5", 0, 0, false},
		{"++5", 0, 0, false},
		{"+", 0, 0, false},
		{"", 0, 0, false},
		{"*5", 0, 0, false},
		{"+5x", 0, 0, false},
		{"+99999999999999999999", 0, 0, false},
	} {
		op, pgid, ok := parseGuardLine(c.line)
		if op != c.op || pgid != c.pgid || ok != c.ok {
			t.Errorf("parseGuardLine(%q) = %q, %d, %v; want %q, %d, %v", c.line, op, pgid, ok, c.op, c.pgid, c.ok)
		}
	}
}

// startGroup starts sh -c script as the leader of a new process group.
func startGroup(t *testing.T, script string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	return cmd
}

// At the end of its input the guardian hangs up the groups still listed,
// and kills those that ignore the hangup after the grace; it leaves alone
// the groups taken off the list.
func TestServeGuardHangsUpListed(t *testing.T) {
	hup := startGroup(t, "sleep 100 & sleep 100")
	stubborn := startGroup(t, "trap '' HUP; sleep 100 & sleep 100")
	removed := startGroup(t, "sleep 100")
	in := fmt.Sprintf("+%d\n+%d\n+%d\ngarbage\n+1\n-%d\n", hup.Process.Pid, stubborn.Process.Pid, removed.Process.Pid, removed.Process.Pid)
	var log bytes.Buffer
	start := time.Now()
	if code := ServeGuard(strings.NewReader(in), &log, 300*time.Millisecond); code != 0 {
		t.Fatalf("ServeGuard: %d", code)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("ServeGuard took %v", took)
	}
	for _, c := range []*exec.Cmd{hup, stubborn} {
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		select {
		case <-done:
		case <-time.After(testTimeout):
			t.Fatalf("group %d survived the guardian", c.Process.Pid)
		}
		// The group's other sleep, reparented, goes too.
		deadline := time.Now().Add(testTimeout)
		for liveInGroup(c.Process.Pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if liveInGroup(c.Process.Pid) {
			t.Errorf("group %d: a process survived the guardian", c.Process.Pid)
		}
	}
	if err := syscall.Kill(removed.Process.Pid, 0); err != nil {
		t.Errorf("the group taken off the list was signalled: %v", err)
	}
	if !strings.Contains(log.String(), "2 session(s)") {
		t.Errorf("log %q", log.String())
	}
}

// A nil Guard does nothing, and a guardian whose input ends with nothing
// listed exits at once.
func TestGuardNilAndEmpty(t *testing.T) {
	var g *Guard
	g.add(5)
	g.remove(5)
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if code := ServeGuard(strings.NewReader("+5\n-5\n"), &bytes.Buffer{}, time.Second); code != 0 {
		t.Fatal(code)
	}
}

// liveInGroup reports whether a process of group pgid is alive (not a
// zombie, which PID 1 may leave unreaped).
func liveInGroup(pgid int) bool {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) >= 3 && f[0] != "Z" && f[0] != "X" && f[2] == strconv.Itoa(pgid) {
			return true
		}
	}
	return false
}
