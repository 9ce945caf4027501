package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"resh/connection"
	"resh/proto"
)

func TestOutputAndExitCode(t *testing.T) {
	srv := startServer(t, nil)
	c := dial(t, srv, proto.Hello{Command: "echo hello; echo err >&2; exit 3"}, nil)
	if s := c.started(); s.PID <= 0 {
		t.Errorf("Started.PID = %d", s.PID)
	}
	if got := readAll(t, c.stdout); got != "hello\n" {
		t.Errorf("stdout = %q, want %q", got, "hello\n")
	}
	if got := readAll(t, c.stderr); got != "err\n" {
		t.Errorf("stderr = %q, want %q", got, "err\n")
	}
	if e := c.exit(); e.Code != 3 || e.Signal != 0 {
		t.Errorf("Exit = %+v, want code 3", e)
	}
}

func TestStdinEOFEndsCommand(t *testing.T) {
	srv := startServer(t, nil)
	c := dial(t, srv, proto.Hello{Command: "cat"}, nil)
	c.started()
	if _, err := io.WriteString(c.stdin, "ping\npong\n"); err != nil {
		t.Fatal(err)
	}
	if err := c.stdin.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, c.stdout); got != "ping\npong\n" {
		t.Errorf("stdout = %q", got)
	}
	if e := c.exit(); e.Code != 0 || e.Signal != 0 {
		t.Errorf("Exit = %+v, want 0", e)
	}
}

func TestEnvironment(t *testing.T) {
	srv := startServer(t, nil)
	c := dial(t, srv, proto.Hello{
		Command: `pwd; echo "$HOME|$USER|$LOGNAME|$LANG|$LC_ALL|$TERM|$SECRET"; echo "$PATH"`,
		Env:     map[string]string{"LANG": "C.UTF-8", "LC_ALL": "C", "SECRET": "leak", "TERM": "xterm"},
	}, nil)
	c.started()
	lines := strings.Split(readAll(t, c.stdout), "\n")
	c.exit()
	home, _ := os.UserHomeDir()
	if len(lines) < 3 {
		t.Fatalf("output %q", lines)
	}
	if lines[0] != home {
		t.Errorf("working directory %q, want home %q", lines[0], home)
	}
	fields := strings.Split(lines[1], "|")
	if fields[0] != home || fields[1] == "" || fields[2] != fields[1] || fields[3] != "C.UTF-8" || fields[4] != "C" || fields[5] != "xterm" || fields[6] != "" {
		t.Errorf("HOME|USER|LOGNAME|LANG|LC_ALL|TERM|SECRET = %q", lines[1])
	}
	exe, _ := os.Executable()
	if want := filepath.Dir(exe) + ":" + defaultPath; lines[2] != want {
		t.Errorf("PATH = %q, want %q", lines[2], want)
	}
}

func TestSignalKillsCommand(t *testing.T) {
	srv := startServer(t, nil)
	c := dial(t, srv, proto.Hello{Command: "sleep 30"}, nil)
	c.started()
	c.send(proto.TypeSignal, proto.Signal{Name: "TERM"})
	if e := c.exit(); e.Signal != 15 {
		t.Errorf("Exit = %+v, want signal 15", e)
	}
}

func TestUnknownSignal(t *testing.T) {
	srv := startServer(t, nil)
	c := dial(t, srv, proto.Hello{Command: "cat"}, nil)
	c.started()
	c.send(proto.TypeSignal, proto.Signal{Name: "WINCH"})
	err := proto.Expect(c.control, proto.TypeExit, &proto.Exit{})
	var re *proto.RemoteError
	if !errors.As(err, &re) || !strings.Contains(re.Message, "WINCH") {
		t.Errorf("after Signal WINCH: %v, want an Error naming it", err)
	}
	_ = c.stdin.Close()
	c.exit()
}

func TestTTYAndResize(t *testing.T) {
	srv := startServer(t, nil)
	c := dial(t, srv, proto.Hello{Command: `tty; stty size; read x; while [ "$(stty size)" = "30 100" ]; do sleep 0.01; done; stty size`, TTY: true, Rows: 30, Cols: 100, Term: "xterm"}, nil)
	c.started()
	if got := readAll(t, c.stderr); got != "" {
		t.Errorf("stderr with tty = %q, want empty and closed", got)
	}
	var out bytes.Buffer
	until(t, c.stdout, &out, "30 100\r\n")
	if !regexp.MustCompile(`^/dev/pts/\d+\r\n`).MatchString(out.String()) {
		t.Errorf("tty printed %q, want /dev/pts/N", out.String())
	}
	// Resize travels on control and the newline on stdin, independent
	// streams: the command waits for the size to change.
	c.send(proto.TypeResize, proto.Resize{Rows: 40, Cols: 120})
	if _, err := io.WriteString(c.stdin, "\n"); err != nil {
		t.Fatal(err)
	}
	until(t, c.stdout, &out, "40 120\r\n")
	out.WriteString(readAll(t, c.stdout))
	if e := c.exit(); e.Code != 0 {
		t.Errorf("Exit = %+v, output %q", e, out.String())
	}
}

func TestVersionMismatch(t *testing.T) {
	srv := startServer(t, nil)
	c := dial(t, srv, proto.Hello{Version: 99, Command: "true"}, nil)
	err := proto.Expect(c.control, proto.TypeStarted, &proto.Started{})
	var re *proto.RemoteError
	if !errors.As(err, &re) || !strings.Contains(re.Message, "99") || !strings.Contains(re.Message, "version 1") {
		t.Fatalf("Hello version 99: %v, want an Error naming versions 99 and 1", err)
	}
}

func TestMissingStreamsTimeOut(t *testing.T) {
	srv := startServer(t, &Config{OpenTimeout: 200 * time.Millisecond})
	ctx := t.Context()
	conn, err := connection.Dial(ctx, "tcp", srv.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	// No streams at all: the server gives up and closes the session.
	_ = conn.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("want the server to close the session, got %v", err)
	}
}

// socketPath runs `echo $RESH_SOCKET; cat` and returns the socket path; the
// command lives until the client closes stdin.
func socketPath(t *testing.T, c *client) string {
	t.Helper()
	c.started()
	var out bytes.Buffer
	until(t, c.stdout, &out, "\n")
	p := strings.TrimSpace(out.String())
	if p == "" {
		t.Fatal("RESH_SOCKET is empty")
	}
	return p
}

func TestTransferRelay(t *testing.T) {
	srv := startServer(t, nil)
	c := dial(t, srv, proto.Hello{Command: "echo $RESH_SOCKET; cat"}, nil)
	path := socketPath(t, c)

	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket with 0600", st.Mode())
	}
	if dst, err := os.Stat(filepath.Dir(path)); err != nil || dst.Mode().Perm() != 0o700 {
		t.Errorf("socket directory: %v %v, want mode 0700", dst.Mode(), err)
	}

	tool, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tool.Close() }()
	_ = tool.SetDeadline(time.Now().Add(testTimeout))
	want := proto.TransferOpen{Op: proto.OpWrite, Path: "dir/f.txt", Tool: "ltee"}
	if err := proto.WriteMessage(tool, proto.TypeTransferOpen, want); err != nil {
		t.Fatal(err)
	}

	s, err := c.mux.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	_ = s.SetDeadline(time.Now().Add(testTimeout))
	var got proto.TransferOpen
	if err := proto.Expect(s, proto.TypeTransferOpen, &got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("client got %+v, want %+v", got, want)
	}
	// client → tool
	if err := proto.WriteMessage(s, proto.TypeTransferReply, proto.TransferReply{OK: true}); err != nil {
		t.Fatal(err)
	}
	var reply proto.TransferReply
	if err := proto.Expect(tool, proto.TypeTransferReply, &reply); err != nil || !reply.OK {
		t.Fatalf("tool got reply %+v, %v", reply, err)
	}
	// tool → client, then the tool's half-close reaches the client
	if _, err := io.WriteString(tool, "file contents"); err != nil {
		t.Fatal(err)
	}
	if err := tool.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(s); err != nil || string(b) != "file contents" {
		t.Errorf("client read %q, %v", b, err)
	}
	// the client can still answer, then its half-close reaches the tool
	if err := proto.WriteMessage(s, proto.TypeTransferResult, proto.TransferResult{OK: true, Bytes: 13}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var res proto.TransferResult
	if err := proto.Expect(tool, proto.TypeTransferResult, &res); err != nil || res.Bytes != 13 {
		t.Errorf("tool got result %+v, %v", res, err)
	}
	if b, err := io.ReadAll(tool); err != nil || len(b) != 0 {
		t.Errorf("after the result the tool read %q, %v; want EOF", b, err)
	}

	// A first message other than TransferOpen gets an Error.
	bad, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = bad.Close() }()
	_ = bad.SetDeadline(time.Now().Add(testTimeout))
	if err := proto.WriteMessage(bad, proto.TypeHello, proto.Hello{}); err != nil {
		t.Fatal(err)
	}
	var re *proto.RemoteError
	if err := proto.Expect(bad, proto.TypeTransferReply, &reply); !errors.As(err, &re) {
		t.Errorf("a Hello on RESH_SOCKET: %v, want an Error", err)
	}

	_ = c.stdin.Close()
	readAll(t, c.stdout)
	if e := c.exit(); e.Code != 0 {
		t.Errorf("Exit = %+v", e)
	}
	c.close()
	waitFor(t, "the socket directory to be removed", func() bool {
		_, err := os.Stat(filepath.Dir(path))
		return errors.Is(err, os.ErrNotExist)
	})
}

func TestClientGoneHangsUp(t *testing.T) {
	srv := startServer(t, &Config{DetachTimeout: 300 * time.Millisecond})
	flag := filepath.Join(t.TempDir(), "hup")
	fd := &faultyDial{}
	c := dial(t, srv, proto.Hello{Command: "trap 'echo hup > " + flag + "; exit 0' HUP; echo ready; sleep 30 & wait"},
		&connection.Config{Dial: fd.dial, ResumeTimeout: 5 * time.Second, DrainTimeout: 100 * time.Millisecond})
	c.started()
	var out bytes.Buffer
	until(t, c.stdout, &out, "ready\n") // the trap is set
	fd.cut()
	waitFor(t, "the command to get SIGHUP", func() bool {
		b, err := os.ReadFile(flag)
		return err == nil && string(b) == "hup\n"
	})
}

func TestShutdownHangsUp(t *testing.T) {
	srv, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	c := dial(t, srv, proto.Hello{Command: "sleep 30"}, nil)
	c.started()
	shut := make(chan error, 1)
	go func() {
		ctx := t.Context()
		shut <- srv.Shutdown(ctx)
	}()
	if e := c.exit(); e.Signal != 1 {
		t.Errorf("Exit at shutdown = %+v, want signal 1 (SIGHUP)", e)
	}
	c.close()
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

func TestConcurrentSessions(t *testing.T) {
	srv := startServer(t, nil)
	var cs []*client
	for i := range 4 {
		cs = append(cs, dial(t, srv, proto.Hello{Command: "read x; echo got $x"}, nil))
		cs[i].started()
	}
	for i := len(cs) - 1; i >= 0; i-- {
		if _, err := io.WriteString(cs[i].stdin, string(rune('a'+i))+"\n"); err != nil {
			t.Fatal(err)
		}
		if got, want := readAll(t, cs[i].stdout), "got "+string(rune('a'+i))+"\n"; got != want {
			t.Errorf("session %d: %q, want %q", i, got, want)
		}
		cs[i].exit()
	}
}

// waitFor polls cond until it holds, failing the test after testTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTTYBackgroundProcessDoesNotHoldSession(t *testing.T) {
	srv := startServer(t, nil)
	c := dial(t, srv, proto.Hello{Command: "(trap '' HUP; exec sleep 30) & echo bg $!; exit 5", TTY: true}, nil)
	c.started()
	out := readAll(t, c.stdout)
	if e := c.exit(); e.Code != 5 {
		t.Errorf("Exit = %+v, want code 5", e)
	}
	var pid int
	if _, err := fmt.Sscanf(strings.TrimSpace(out), "bg %d", &pid); err != nil || pid <= 0 {
		t.Fatalf("output %q: %v", out, err)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

func TestLoginShell(t *testing.T) {
	t.Setenv("SHELL", "/bin/sh")
	srv := startServer(t, nil)
	c := dial(t, srv, proto.Hello{}, nil)
	c.started()
	if _, err := io.WriteString(c.stdin, "echo in $SHELL; exit 7\n"); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, c.stdout); !strings.HasSuffix(got, "in /bin/sh\n") {
		t.Errorf("stdout %q", got)
	}
	if e := c.exit(); e.Code != 7 {
		t.Errorf("Exit %+v, want code 7", e)
	}
}

func TestCommandCannotStart(t *testing.T) {
	t.Setenv("SHELL", "/nonexistent/shell")
	srv := startServer(t, nil)
	c := dial(t, srv, proto.Hello{}, nil)
	err := proto.Expect(c.control, proto.TypeStarted, &proto.Started{})
	var re *proto.RemoteError
	if !errors.As(err, &re) || !strings.Contains(re.Message, "/nonexistent/shell") {
		t.Errorf("missing login shell: %v, want an Error naming it", err)
	}
}

func TestUnknownStreamKind(t *testing.T) {
	srv := startServer(t, nil)
	conn, err := dialRaw(t.Context(), srv)
	if err != nil {
		t.Fatal(err)
	}
	mux, err := proto.Client(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mux.Close() }()
	s, err := mux.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	// The server may end the session before yamux reports this write done.
	if err := proto.WriteMessage(s, proto.TypeOpen, proto.Open{Kind: "video"}); err != nil && !errors.Is(err, yamux.ErrSessionShutdown) {
		t.Fatal(err)
	}
	select {
	case <-mux.CloseChan():
	case <-time.After(testTimeout):
		t.Fatal("the server kept a session whose stream kind it does not know")
	}
}

// A client whose transport is gone (but whose session has not expired)
// cannot hold Shutdown past its bound, and its command is hung up.
func TestShutdownWithDetachedClient(t *testing.T) {
	srv, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	flag := filepath.Join(t.TempDir(), "hup")
	fd := &faultyDial{}
	c := dial(t, srv, proto.Hello{Command: "trap 'echo hup > " + flag + "; exit 0' HUP; echo ready; sleep 30 & wait"},
		&connection.Config{Dial: fd.dial, ResumeTimeout: 5 * time.Second, DrainTimeout: 100 * time.Millisecond})
	c.started()
	var out bytes.Buffer
	until(t, c.stdout, &out, "ready\n") // the trap is set
	fd.cut()
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want the deadline (the Exit cannot be delivered)", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Shutdown took %v", d)
	}
	if b, err := os.ReadFile(flag); err != nil || string(b) != "hup\n" {
		t.Errorf("the command was not hung up: %q, %v", b, err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

func TestHomeFromEnvironment(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	srv := startServer(t, nil)
	c := dial(t, srv, proto.Hello{Command: `pwd; echo "$HOME"`}, nil)
	c.started()
	if got, want := readAll(t, c.stdout), home+"\n"+home+"\n"; got != want {
		t.Errorf("pwd and HOME: %q, want %q", got, want)
	}
	c.exit()
}

// TestShutdownTwice: a second Shutdown returns at once, without a panic.
func TestShutdownTwice(t *testing.T) {
	srv, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}
