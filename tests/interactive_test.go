package tests

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"resh/mitm"
)

// term runs resh in a pseudo-terminal, as a user at a terminal would.
type term struct {
	t    *testing.T
	cmd  *exec.Cmd
	ptmx *os.File
	mu   sync.Mutex
	out  strings.Builder
	more chan struct{} // signalled when output arrives
	done chan struct{} // closed when the pty reader ends

	waitOnce sync.Once
	exited   chan struct{} // closed once cmd.Wait returned, into waitErr
	waitErr  error
}

// waited starts the one cmd.Wait (the cleanup and wait both need it) and
// returns the channel closed when it returned.
func (tm *term) waited() <-chan struct{} {
	tm.waitOnce.Do(func() {
		go func() {
			tm.waitErr = tm.cmd.Wait()
			close(tm.exited)
		}()
	})
	return tm.exited
}

func startTerm(t *testing.T, rows, cols uint16, args ...string) *term {
	t.Helper()
	cmd := reshCommand(context.Background(), args...)
	cmd.Env = append(os.Environ(), "TERM=dumb")
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: rows, Cols: cols})
	if err != nil {
		t.Fatal(err)
	}
	tm := &term{t: t, cmd: cmd, ptmx: ptmx, more: make(chan struct{}, 1), done: make(chan struct{}), exited: make(chan struct{})}
	go func() {
		defer close(tm.done)
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			if n > 0 {
				tm.mu.Lock()
				tm.out.Write(buf[:n])
				tm.mu.Unlock()
				select {
				case tm.more <- struct{}{}:
				default:
				}
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-tm.waited()
		ptmx.Close()
		<-tm.done
	})
	return tm
}

func (tm *term) send(s string) {
	if _, err := tm.ptmx.Write([]byte(s)); err != nil {
		tm.t.Fatal(err)
	}
}

// expect waits until the output since the last expect contains want.
func (tm *term) expect(want string, within time.Duration) {
	tm.t.Helper()
	deadline := time.After(within)
	for {
		tm.mu.Lock()
		s := tm.out.String()
		if i := strings.Index(s, want); i >= 0 {
			rest := s[i+len(want):]
			tm.out.Reset()
			tm.out.WriteString(rest)
			tm.mu.Unlock()
			return
		}
		tm.mu.Unlock()
		select {
		case <-tm.more:
		case <-tm.done:
			tm.t.Fatalf("resh ended before printing %q; output: %q", want, s)
		case <-deadline:
			tm.t.Fatalf("no %q within %v; output: %q", want, within, s)
		}
	}
}

// wait returns resh's exit status.
func (tm *term) wait(within time.Duration) int {
	tm.t.Helper()
	select {
	case <-tm.waited():
		err := tm.waitErr
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			tm.t.Fatal(err)
		}
		return 0
	case <-time.After(within):
		tm.t.Fatal("resh did not exit")
		return -1
	}
}

// An interactive shell: size, resize, ^C, and the exit status.
func TestInteractiveShell(t *testing.T) {
	d := startReshd(t)
	tm := startTerm(t, 30, 100, d.addr)
	tm.send("stty size\n")
	tm.expect("30 100", 15*time.Second)
	if err := pty.Setsize(tm.ptmx, &pty.Winsize{Rows: 40, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	// The resize travels on its own channel: the remote shell waits for it.
	tm.send(`while [ "$(stty size)" != "40 120" ]; do sleep 0.05; done; echo resized-$((1+1))` + "\n")
	tm.expect("resized-2", 15*time.Second)
	// The foreground job says when it runs, so that ^C cannot arrive first.
	tm.send("sh -c 'echo sl$((0+1))eeping; exec sleep 30'\n")
	tm.expect("sl1eeping", 15*time.Second)
	tm.send("\x03") // ^C reaches the remote sleep through the raw terminal
	tm.send("echo after-$((40+2))\n")
	tm.expect("after-42", 15*time.Second)
	tm.send("exit 5\n")
	if code := tm.wait(15 * time.Second); code != 5 {
		t.Fatalf("resh exited %d, want 5", code)
	}
}

// The ~. escape ends a hung session, as in ssh.
func TestEscapeEndsSession(t *testing.T) {
	d := startReshd(t)
	tm := startTerm(t, 24, 80, "-t", d.addr, "sleep 60")
	tm.send("\r~.")
	if code := tm.wait(15 * time.Second); code != 255 {
		t.Fatalf("resh exited %d after ~., want 255", code)
	}
}

// An interactive session survives an outage: resh says it reconnects, the
// remote shell keeps running and the screen carries on.
func TestInteractiveSurvivesOutage(t *testing.T) {
	d := startReshd(t)
	p := throughMitm(t, d, mitm.Faults{}, mitm.Faults{})
	tm := startTerm(t, 24, 80, p.Addr().String())
	tm.send("x=$((6*7)); echo before-$x\n")
	tm.expect("before-42", 15*time.Second)
	p.SetRefuse(3)
	p.DropAll()
	tm.expect("reconnect", 20*time.Second)
	tm.send("echo after-$x\n")
	tm.expect("after-42", 30*time.Second)
	tm.send("exit\n")
	if code := tm.wait(15 * time.Second); code != 0 {
		t.Fatalf("resh exited %d", code)
	}
}
