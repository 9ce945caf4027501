package client

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"resh/proto"
)

// testStartTimeout stands for StartTimeout in these tests.
const testStartTimeout = 200 * time.Millisecond

// endCommand ends the fake's command with code and no output.
func (s *fakeSession) endCommand(code int) {
	s.stdout.Close()
	s.stderr.Close()
	s.send(proto.TypeExit, proto.Exit{Code: code})
}

// TestQueuedThenStarted: while Queued comes, resh waits past its start
// timeout (lifted by the first Queued) for Started, and without a
// terminal or -v says nothing of it.
func TestQueuedThenStarted(t *testing.T) {
	port := startFake(t, func(s *fakeSession) {
		s.send(proto.TypeQueued, proto.Queued{Ahead: 2})
		time.Sleep(testStartTimeout * 3 / 4) // the queue moves on its own time
		s.send(proto.TypeQueued, proto.Queued{Ahead: 1})
		time.Sleep(testStartTimeout * 3) // stuck: no Queued for a while
		s.send(proto.TypeStarted, proto.Started{PID: 1})
		s.write(s.stdout, "ran\n")
		s.endCommand(0)
	})
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := runClientEnv(t, port, Options{Command: "x"}, Env{Stdout: &stdout, Stderr: &stderr, StartTimeout: testStartTimeout})
	assert.Equal(t, 0, code, "stderr %q", stderr.String())
	assert.Equal(t, "ran\n", stdout.String())
	assert.Empty(t, stderr.String(), "no terminal, no -v: nothing said of the queue")
	assert.Greater(t, time.Since(start), 3*testStartTimeout)
}

// TestStartTimeout: without Queued, the start timeout still holds.
func TestStartTimeout(t *testing.T) {
	port := startFake(t, func(s *fakeSession) {})
	var stderr bytes.Buffer
	code := runClientEnv(t, port, Options{Command: "x"}, Env{Stdout: io.Discard, Stderr: &stderr, StartTimeout: testStartTimeout})
	assert.Equal(t, 255, code)
	assert.Regexp(t, `^resh: no answer from 127\.0\.0\.1:\d+ within 200ms\n$`, stderr.String())
}

// TestQueuedVerbose: with -v each change is a line, terminal or not.
func TestQueuedVerbose(t *testing.T) {
	port := startFake(t, func(s *fakeSession) {
		for _, n := range []int{3, 3, 1, 0} {
			s.send(proto.TypeQueued, proto.Queued{Ahead: n})
		}
		s.send(proto.TypeStarted, proto.Started{})
		s.endCommand(0)
	})
	var stderr bytes.Buffer
	code := runClientEnv(t, port, Options{Command: "x", Verbosity: 1}, Env{Stdout: io.Discard, Stderr: &stderr})
	require.Equal(t, 0, code, "stderr %q", stderr.String())
	var waiting []string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(l, "waiting") {
			waiting = append(waiting, l)
		}
	}
	assert.Equal(t, []string{
		"resh: waiting for a free executor (3 ahead)",
		"resh: waiting for a free executor (1 ahead)",
		"resh: waiting for a free executor (0 ahead)",
	}, waiting)
}

// TestQueuedThenError: the master's queue timeout ends the wait with an
// Error: resh prints it and exits 255.
func TestQueuedThenError(t *testing.T) {
	const msg = "no executor took the session within 3m0s: 2 executors up, all busy"
	port := startFake(t, func(s *fakeSession) {
		s.send(proto.TypeQueued, proto.Queued{Ahead: 0})
		s.send(proto.TypeError, proto.Error{Message: msg})
		s.control.Close()
	})
	code, stdout, stderr := runClient(t, port, Options{Command: "x"}, "", "", nil)
	assert.Equal(t, 255, code)
	assert.Empty(t, stdout)
	assert.Equal(t, "resh: "+msg+"\n", stderr)
}

// TestQueuedInterrupted: a signal while queued ends resh (there is no
// command to forward it to), which leaves the queue by closing the session.
func TestQueuedInterrupted(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	port := startFake(t, func(s *fakeSession) {
		s.send(proto.TypeQueued, proto.Queued{Ahead: 4})
		sigs <- syscall.SIGINT
	})
	code, _, stderr := runClient(t, port, Options{Command: "x"}, "", "", sigs)
	assert.Equal(t, 255, code)
	assert.Equal(t, "resh: interrupt while waiting for a free executor\n", stderr)
}

// ptyOutput collects what is written to a pseudo-terminal's slave, read
// from its master until the slave is closed.
type ptyOutput struct {
	mu     sync.Mutex
	b      bytes.Buffer
	change chan struct{} // a value after each read
	done   chan struct{}
}

func readPTY(ptm *os.File) *ptyOutput {
	o := &ptyOutput{change: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(o.done)
		buf := make([]byte, 4096)
		for {
			n, err := ptm.Read(buf)
			o.mu.Lock()
			o.b.Write(buf[:n])
			o.mu.Unlock()
			select {
			case o.change <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	return o
}

func (o *ptyOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// waitFor waits until the output contains s.
func (o *ptyOutput) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !strings.Contains(o.String(), s) {
		select {
		case <-o.change:
		case <-o.done:
			t.Errorf("the terminal closed without showing %q: %q", s, o.String())
			return
		case <-deadline:
			t.Errorf("the terminal never showed %q: %q", s, o.String())
			return
		}
	}
}

// TestQueuedLineOnTerminal: with stderr a terminal the waiting line is
// drawn in place, updated, and cleared when Started comes; with -q it is
// not drawn.
func TestQueuedLineOnTerminal(t *testing.T) {
	for _, quiet := range []bool{false, true} {
		ptm, tty, err := pty.Open()
		if err != nil {
			t.Skipf("no pseudo-terminal: %v", err)
		}
		out := readPTY(ptm)
		port := startFake(t, func(s *fakeSession) {
			s.send(proto.TypeQueued, proto.Queued{Ahead: 3})
			if !quiet {
				out.waitFor(t, "(3 ahead)")
			}
			s.send(proto.TypeQueued, proto.Queued{Ahead: 1})
			if !quiet {
				out.waitFor(t, "(1 ahead)")
			}
			s.send(proto.TypeStarted, proto.Started{})
			s.write(s.stdout, "hello\n")
			s.endCommand(0)
		})
		var stdout bytes.Buffer
		code := runClientEnv(t, port, Options{Command: "x", Quiet: quiet}, Env{Stdout: &stdout, Stderr: tty})
		require.NoError(t, tty.Close())
		<-out.done
		ptm.Close()
		assert.Equal(t, 0, code)
		assert.Equal(t, "hello\n", stdout.String())
		if quiet {
			assert.Empty(t, out.String(), "-q: nothing on the terminal")
			continue
		}
		assert.Equal(t, "\rresh: waiting for a free executor (3 ahead)\x1b[K\rresh: waiting for a free executor (1 ahead)\x1b[K\r\x1b[K", out.String())
		assert.Equal(t, "", screen(out.String()), "the line is cleared")
	}
}

// TestQueueLineGuard: a notice written while the line is shown erases it
// first, and the line comes back after the notice's line.
func TestQueueLineGuard(t *testing.T) {
	var b bytes.Buffer
	r := &runner{o: &Options{}, stderr: &syncWriter{w: &b}}
	q := r.queueLine(true)
	q.show(2)
	r.stderr.printf("resh: connection lost, reconnecting…\n")
	assert.Equal(t, "resh: connection lost, reconnecting…\nresh: waiting for a free executor (2 ahead)", screen(b.String()))
	q.show(1)
	q.clear()
	q.clear()
	assert.Equal(t, "resh: connection lost, reconnecting…\n", screen(b.String()))
	assert.Same(t, &b, r.stderr.w.(*bytes.Buffer), "the guard is removed")
}

// TestQueuedBadMessage: a message other than Queued, Started or Error
// before Started is a protocol error.
func TestQueuedBadMessage(t *testing.T) {
	port := startFake(t, func(s *fakeSession) {
		s.send(proto.TypeQueued, proto.Queued{Ahead: 1})
		s.send(proto.TypeExit, proto.Exit{})
	})
	code, _, stderr := runClient(t, port, Options{Command: "x"}, "", "", nil)
	assert.Equal(t, 255, code)
	assert.Equal(t, "resh: protocol error: session protocol: unexpected message: got type 7, want 3\n", stderr)
}

// notifyWriter is a buffer that signals each write.
type notifyWriter struct {
	mu      sync.Mutex
	b       bytes.Buffer
	written chan struct{}
}

func (w *notifyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case w.written <- struct{}{}:
	default:
	}
	return w.b.Write(p)
}

// TestQueuedInteractive: an interactive session's terminal, raw for the
// pseudo-terminal, is cooked while queued (so that ^C reaches resh as a
// signal, which ends the wait) and raw again once the command runs; it is
// restored at the end either way.
func TestQueuedInteractive(t *testing.T) {
	for _, interrupt := range []bool{true, false} {
		ptm, tty, err := pty.Open()
		if err != nil {
			t.Skipf("no pseudo-terminal: %v", err)
		}
		before, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
		require.NoError(t, err)
		canonical := func() bool {
			tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
			assert.NoError(t, err)
			return tio.Lflag&unix.ICANON != 0
		}
		out := readPTY(ptm)
		sigs := make(chan os.Signal, 1)
		stdout := &notifyWriter{written: make(chan struct{}, 1)}
		port := startFake(t, func(s *fakeSession) {
			assert.True(t, s.hello.TTY)
			s.send(proto.TypeQueued, proto.Queued{Ahead: 1})
			out.waitFor(t, "(1 ahead)")
			assert.True(t, canonical(), "cooked while queued")
			if interrupt {
				sigs <- syscall.SIGINT // ^C on the cooked terminal
				return
			}
			s.send(proto.TypeStarted, proto.Started{})
			s.write(s.stdout, "$ ")
			select {
			case <-stdout.written: // the command's output comes once raw again
			case <-time.After(10 * time.Second):
				t.Error("no output")
			}
			assert.False(t, canonical(), "raw once the command runs")
			if _, err := io.WriteString(ptm, "~."); err != nil {
				t.Error(err)
			}
		})
		o := Options{Host: "127.0.0.1", Port: port, Insecure: true}
		code := Run(context.Background(), &o, Env{Stdin: tty, Stdout: stdout, Stderr: tty,
			Environ: []string{"TERM=vt100"}, Dir: t.TempDir(), Signals: sigs})
		after, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
		require.NoError(t, err)
		assert.Equal(t, *before, *after, "terminal restored")
		require.NoError(t, tty.Close())
		<-out.done
		ptm.Close()
		assert.Equal(t, 255, code)
		want := "resh: connection closed by escape"
		if interrupt {
			want = "resh: interrupt while waiting for a free executor"
		}
		assert.Equal(t, want+"\n", screen(strings.ReplaceAll(out.String(), "\r\n", "\n")), "the waiting line is cleared")
	}
}
