package tests

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fifo makes a FIFO named f in a new directory and returns its path.
func fifo(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f")
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	return path
}

// A FIFO on the client is refused at once, opened by nobody: resh ends
// with the command (issue 9: it hung for ever, blocked opening it).
func TestFIFORefusedPromptly(t *testing.T) {
	d := startReshd(t)
	f := fifo(t)
	for _, cmd := range []string{"timeout 3 lcat f; exit 5", "echo x | timeout 3 ltee f; exit 5"} {
		start := time.Now()
		r := resh(t, filepath.Dir(f), "", d.args(d.addr, cmd)...)
		if r.code != 5 || !strings.Contains(r.stderr, ": refused: f is a FIFO, not a regular file (name it with -allow to permit)\n") {
			t.Errorf("%s: %+v", cmd, r)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("%s: resh took %v", cmd, took)
		}
	}
}

// An allowed FIFO that never delivers: the transfer waits, but the end of
// the command, SIGTERM and ~. still end resh at once.
func TestAllowedFIFONeverHangsResh(t *testing.T) {
	d := startReshd(t)
	f := fifo(t)
	hold, err := os.OpenFile(f, os.O_RDWR, 0) // a writer and a reader that do nothing
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	for _, cmd := range []string{"timeout 3 lcat f; exit 5", "yes | timeout 3 ltee f >/dev/null; exit 5"} {
		start := time.Now()
		r := resh(t, filepath.Dir(f), "", append([]string{"-allow", "f"}, d.args(d.addr, cmd)...)...)
		if r.code != 5 {
			t.Errorf("%s: %+v", cmd, r)
		}
		if took := time.Since(start); took > 8*time.Second {
			t.Errorf("%s: resh took %v, the command 3 s", cmd, took)
		}
	}
	drainFIFO(t, hold)

	// SIGTERM goes to the command; resh ends with it.
	cmd := reshCommand(context.Background(), append([]string{"-v", "-allow", f}, d.args(d.addr, "lcat "+f)...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	announced := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "resh: lcat: reading "+f) {
				close(announced)
			}
		}
	}()
	select {
	case <-announced:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the transfer did not start")
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case <-waited:
		if code := cmd.ProcessState.ExitCode(); code != 128+int(syscall.SIGTERM) {
			t.Errorf("after SIGTERM: exit %d", code)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-waited
		t.Fatal("resh ignored SIGTERM during a transfer")
	}

	// ~. on a terminal.
	tm := startTerm(t, 24, 200, append([]string{"-t", "-allow", f}, d.args(d.addr, "lcat "+f)...)...)
	tm.expect("resh: lcat: reading "+f, 30*time.Second)
	tm.send("\r~.")
	if code := tm.wait(10 * time.Second); code != 255 {
		t.Errorf("after ~.: exit %d", code)
	}
}

// drainFIFO empties what a test left in a FIFO it holds.
func drainFIFO(t *testing.T, f *os.File) {
	t.Helper()
	if err := f.SetReadDeadline(time.Now()); err != nil {
		return
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Read(buf); err != nil {
			break
		}
	}
	_ = f.SetReadDeadline(time.Time{})
}
