package client

import (
	"bytes"
	"context"
	"io"
	"os"
	"syscall"
	"testing"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"resh/proto"
)

// TestInteractiveEscape runs resh with a pseudo-terminal as its stdin: it
// asks for a tty of the terminal's size, sends Resize on SIGWINCH, puts the terminal in raw mode (so
// "~." arrives without a newline), forwards what is typed before the
// escape, ends at "~." with exit 255, and restores the terminal.
func TestInteractiveEscape(t *testing.T) {
	ptm, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptm.Close()
	defer tty.Close()
	if err := pty.Setsize(ptm, &pty.Winsize{Rows: 33, Cols: 101}); err != nil {
		t.Fatal(err)
	}
	before, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	var hello proto.Hello
	var resize proto.Resize
	sigs := make(chan os.Signal, 1)
	typed := make(chan string, 1)
	port := startFake(t, func(s *fakeSession) {
		hello = s.hello
		s.send(proto.TypeStarted, proto.Started{})
		// The window changes size.
		if err := pty.Setsize(ptm, &pty.Winsize{Rows: 40, Cols: 120}); err != nil {
			t.Error(err)
		}
		sigs <- syscall.SIGWINCH
		if err := proto.Expect(s.control, proto.TypeResize, &resize); err != nil {
			t.Error(err)
		}
		// The user types a command, then a tilde in mid-line, a doubled
		// tilde at the start of a line, and the escape.
		if _, err := io.WriteString(ptm, "ls ~x\r~~y\r"); err != nil {
			t.Error(err)
		}
		want := "ls ~x\r~y\r"
		buf := make([]byte, len(want))
		if _, err := io.ReadFull(s.stdin, buf); err != nil {
			t.Error(err)
		}
		typed <- string(buf)
		if _, err := io.WriteString(ptm, "~."); err != nil {
			t.Error(err)
		}
	})
	var stdout, stderr bytes.Buffer
	o := Options{Host: "127.0.0.1", Port: port, Insecure: true}
	code := Run(context.Background(), &o, Env{Stdin: tty, Stdout: &stdout, Stderr: &stderr,
		Environ: []string{"TERM=vt100"}, Dir: t.TempDir(), Signals: sigs})
	if got := <-typed; got != "ls ~x\r~y\r" {
		t.Errorf("the remote side received %q", got)
	}
	if code != 255 || stderr.String() != "resh: connection closed by escape\n" {
		t.Errorf("exit %d stderr %q; want 255 and the escape message", code, stderr.String())
	}
	if !hello.TTY || hello.Rows != 33 || hello.Cols != 101 || hello.Term != "vt100" || hello.Command != "" {
		t.Errorf("Hello %+v; want a tty of 33x101, TERM vt100, login shell", hello)
	}
	if resize != (proto.Resize{Rows: 40, Cols: 120}) {
		t.Errorf("after SIGWINCH the server got %+v, want 40x120", resize)
	}
	after, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if *after != *before || after.Lflag&unix.ICANON == 0 {
		t.Errorf("terminal not restored: lflag %#x, was %#x", after.Lflag, before.Lflag)
	}
}
