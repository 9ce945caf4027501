package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"resh/connection"
	"resh/proto"
)

// fakeSession is the server's view of one resh session, for a handler.
type fakeSession struct {
	t                              *testing.T
	sess                           *yamux.Session
	control, stdin, stdout, stderr *yamux.Stream
	hello                          proto.Hello
	// noWait: the client will not close the session cleanly (it lost it).
	noWait bool
}

// startFake runs a fake reshd on 127.0.0.1 that accepts one session, reads
// the four streams and Hello, and hands them to handler. It returns the
// port.
func startFake(t *testing.T, handler func(s *fakeSession)) int {
	t.Helper()
	return startFakeN(t, 1, handler)
}

// startFakeN is startFake for n sessions, one connection each, served at
// once, each by handler in its own goroutine.
func startFakeN(t *testing.T, n int, handler func(s *fakeSession)) int {
	t.Helper()
	// A session the client lost is not kept (nor drained) for long.
	srv, err := connection.Listen("tcp", "127.0.0.1:0", &connection.Config{DrainTimeout: 200 * time.Millisecond, DetachTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		<-done
		srv.Close()
	})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		defer wg.Wait()
		for range n {
			acc, err := srv.Accept()
			if err != nil {
				t.Error(err)
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				serveFake(t, acc, handler)
			}()
		}
	}()
	return srv.Addr().(*net.TCPAddr).Port
}

// serveFake serves one session of the fake reshd on acc.
func serveFake(t *testing.T, acc net.Conn, handler func(s *fakeSession)) {
	defer acc.Close()
	sess, err := proto.Server(acc)
	if err != nil {
		t.Error(err)
		return
	}
	defer sess.Close()
	s := &fakeSession{t: t, sess: sess}
	for i, want := range []string{proto.KindControl, proto.KindStdin, proto.KindStdout, proto.KindStderr} {
		st, err := sess.AcceptStream()
		if err != nil {
			t.Error(err)
			return
		}
		var open proto.Open
		if err := proto.Expect(st, proto.TypeOpen, &open); err != nil || open.Kind != want {
			t.Errorf("stream %d: Open %+v, %v; want kind %s", i, open, err, want)
			return
		}
		*[]**yamux.Stream{&s.control, &s.stdin, &s.stdout, &s.stderr}[i] = st
	}
	if err := proto.Expect(s.control, proto.TypeHello, &s.hello); err != nil {
		t.Error(err)
		return
	}
	handler(s)
	if s.noWait {
		return
	}
	// Wait for the client to hang up.
	select {
	case <-sess.CloseChan():
	case <-time.After(10 * time.Second):
		t.Error("the client did not close the session")
	}
}

// runClient runs resh against port with stdin and returns the exit status,
// stdout and stderr.
func runClient(t *testing.T, port int, o Options, stdin string, dir string, sigs <-chan os.Signal) (int, string, string) {
	return runClientConfig(t, port, o, stdin, dir, sigs, nil)
}

func runClientConfig(t *testing.T, port int, o Options, stdin string, dir string, sigs <-chan os.Signal, cfg *connection.Config) (int, string, string) {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	var stdout, stderr bytes.Buffer
	code := runClientEnv(t, port, o, Env{Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr, Dir: dir, Signals: sigs, Connection: cfg})
	return code, stdout.String(), stderr.String()
}

// runClientEnv runs resh against port in env, completed as runClient
// does, and returns the exit status.
func runClientEnv(t *testing.T, port int, o Options, env Env) int {
	t.Helper()
	o.Host, o.Port = "127.0.0.1", port
	o.Insecure = true // the fake reshd speaks plain TCP
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	if env.Dir == "" {
		env.Dir = t.TempDir()
	}
	if env.Signals == nil {
		env.Signals = make(chan os.Signal)
	}
	if env.Environ == nil {
		env.Environ = []string{"TERM=xterm", "LANG=C.UTF-8", "LC_ALL=C", "HOME=/secret", "PATH=/bin"}
	}
	return Run(context.Background(), &o, env)
}

func (s *fakeSession) write(st *yamux.Stream, data string) {
	if _, err := io.WriteString(st, data); err != nil {
		s.t.Error(err)
	}
}

// send writes a control message. A session the client already closed is
// not an error here: the client may close as soon as it has read the
// message (Exit), before yamux reports the write done; what the client did
// is checked by each test on its own.
func (s *fakeSession) send(t proto.Type, v any) {
	if err := proto.WriteMessage(s.control, t, v); err != nil && !errors.Is(err, yamux.ErrSessionShutdown) {
		s.t.Error(err)
	}
}

func TestRunCommand(t *testing.T) {
	var hello proto.Hello
	var gotStdin string
	port := startFake(t, func(s *fakeSession) {
		hello = s.hello
		s.send(proto.TypeStarted, proto.Started{PID: 42})
		b, err := io.ReadAll(s.stdin) // the client half-closes at EOF
		if err != nil {
			t.Error(err)
		}
		gotStdin = string(b)
		s.write(s.stdout, "out")
		s.write(s.stderr, "err")
		s.stdout.Close()
		s.stderr.Close()
		s.send(proto.TypeExit, proto.Exit{Code: 7})
	})
	code, stdout, stderr := runClient(t, port, Options{Command: "sha256sum -"}, "input bytes", "", nil)
	if code != 7 || stdout != "out" || stderr != "err" {
		t.Fatalf("exit %d stdout %q stderr %q; want 7, \"out\", \"err\"", code, stdout, stderr)
	}
	if gotStdin != "input bytes" {
		t.Errorf("the command read %q on stdin", gotStdin)
	}
	want := proto.Hello{Version: proto.Version, Command: "sha256sum -", Term: "xterm",
		Env: map[string]string{"TERM": "xterm", "LANG": "C.UTF-8", "LC_ALL": "C"}}
	if hello.Version != want.Version || hello.Command != want.Command || hello.TTY || hello.Term != want.Term ||
		len(hello.Env) != 3 || hello.Env["LANG"] != "C.UTF-8" || hello.Env["LC_ALL"] != "C" {
		t.Errorf("Hello %+v, want %+v", hello, want)
	}
}

func TestRunExitStatus(t *testing.T) {
	for _, c := range []struct {
		exit proto.Exit
		want int
	}{{proto.Exit{Code: 0}, 0}, {proto.Exit{Code: 255}, 255}, {proto.Exit{Signal: 9}, 137}, {proto.Exit{Signal: 15, Core: true}, 143}} {
		port := startFake(t, func(s *fakeSession) {
			s.send(proto.TypeStarted, proto.Started{})
			s.stdout.Close()
			s.stderr.Close()
			s.send(proto.TypeExit, c.exit)
		})
		if code, _, stderr := runClient(t, port, Options{Command: "x"}, "", "", nil); code != c.want || stderr != "" {
			t.Errorf("Exit %+v: resh exit %d stderr %q, want %d", c.exit, code, stderr, c.want)
		}
	}
}

func TestExitStatusMapping(t *testing.T) {
	for _, c := range []struct {
		exit proto.Exit
		want int
	}{{proto.Exit{Code: 3}, 3}, {proto.Exit{Signal: 2}, 130}, {proto.Exit{Code: -1}, 255}, {proto.Exit{Code: 300}, 255}} {
		if got := exitStatus(c.exit); got != c.want {
			t.Errorf("exitStatus(%+v) = %d, want %d", c.exit, got, c.want)
		}
	}
}

func TestRunRefused(t *testing.T) {
	port := startFake(t, func(s *fakeSession) {
		s.send(proto.TypeError, proto.Error{Message: "protocol version 9 not supported (server speaks 1)"})
		s.control.Close()
	})
	code, stdout, stderr := runClient(t, port, Options{Command: "x"}, "", "", nil)
	if code != 255 || stdout != "" || stderr != "resh: protocol version 9 not supported (server speaks 1)\n" {
		t.Fatalf("exit %d stdout %q stderr %q", code, stdout, stderr)
	}
}

func TestRunSessionLost(t *testing.T) {
	port := startFake(t, func(s *fakeSession) {
		s.send(proto.TypeStarted, proto.Started{})
		s.write(s.stdout, "partial")
		s.sess.Close() // the server goes away before Exit
	})
	code, stdout, stderr := runClient(t, port, Options{Command: "x"}, "", "", nil)
	if code != 255 || stdout != "partial" || !strings.HasPrefix(stderr, "resh: session lost: ") || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("exit %d stdout %q stderr %q; want 255 and one line resh: session lost: ...", code, stdout, stderr)
	}
}

func TestRunConnectRefused(t *testing.T) {
	srv, err := connection.Listen("tcp", "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	port := srv.Addr().(*net.TCPAddr).Port
	srv.Close() // nothing listens there now
	code, _, stderr := runClient(t, port, Options{Command: "x"}, "", "", nil)
	if code != 255 || !strings.HasPrefix(stderr, "resh: cannot connect to 127.0.0.1:") || !strings.Contains(stderr, "refused") || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("exit %d stderr %q", code, stderr)
	}
}

func TestRunForwardsSignals(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	var got []string
	port := startFake(t, func(s *fakeSession) {
		s.send(proto.TypeStarted, proto.Started{})
		sigs <- syscall.SIGINT
		for _, want := range []string{"INT", "TERM"} {
			var sig proto.Signal
			if err := proto.Expect(s.control, proto.TypeSignal, &sig); err != nil {
				t.Error(err)
				return
			}
			got = append(got, sig.Name)
			if want == "INT" {
				sigs <- syscall.SIGTERM
			}
		}
		s.stdout.Close()
		s.stderr.Close()
		s.send(proto.TypeExit, proto.Exit{Signal: int(syscall.SIGTERM)})
	})
	code, _, _ := runClient(t, port, Options{Command: "sleep 100"}, "", "", sigs)
	if code != 128+int(syscall.SIGTERM) || strings.Join(got, ",") != "INT,TERM" {
		t.Fatalf("exit %d, the server received signals %v; want 143 and INT,TERM", code, got)
	}
}

func TestRunTransfers(t *testing.T) {
	dir := t.TempDir()
	data := bytes.Repeat([]byte("transfer data\n"), 40000)
	if err := os.WriteFile(filepath.Join(dir, "in.txt"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	var readBack []byte
	var reply, refused proto.TransferReply
	var result proto.TransferResult
	port := startFake(t, func(s *fakeSession) {
		s.send(proto.TypeStarted, proto.Started{})
		// Three transfers at once: lcat in.txt, ltee out.txt, lcat /etc/passwd.
		open := func(o proto.TransferOpen) *yamux.Stream {
			st, err := s.sess.OpenStream()
			if err != nil {
				t.Error(err)
				return nil
			}
			if err := proto.WriteMessage(st, proto.TypeTransferOpen, o); err != nil {
				t.Error(err)
			}
			return st
		}
		rd := open(proto.TransferOpen{Op: proto.OpRead, Path: "in.txt", Tool: "lcat"})
		wr := open(proto.TransferOpen{Op: proto.OpWrite, Path: "out.txt", Tool: "ltee"})
		bad := open(proto.TransferOpen{Op: proto.OpRead, Path: "/etc/passwd", Tool: "lcat"})
		if rd == nil || wr == nil || bad == nil {
			return
		}
		if err := proto.Expect(bad, proto.TypeTransferReply, &refused); err != nil {
			t.Error(err)
		}
		var wreply proto.TransferReply
		if err := proto.Expect(wr, proto.TypeTransferReply, &wreply); err != nil || !wreply.OK {
			t.Errorf("ltee reply %+v, %v", wreply, err)
		}
		s.write(wr, "written by ltee\n")
		wr.Close()
		if err := proto.Expect(wr, proto.TypeTransferResult, &result); err != nil {
			t.Error(err)
		}
		if err := proto.Expect(rd, proto.TypeTransferReply, &reply); err != nil {
			t.Error(err)
		}
		var err error
		if readBack, err = io.ReadAll(rd); err != nil {
			t.Error(err)
		}
		rd.Close()
		bad.Close()
		s.stdout.Close()
		s.stderr.Close()
		s.send(proto.TypeExit, proto.Exit{})
	})
	code, _, stderr := runClient(t, port, Options{Command: "lcat in.txt"}, "", dir, nil)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d stderr %q", code, stderr)
	}
	if !reply.OK || reply.Size != int64(len(data)) || !bytes.Equal(readBack, data) {
		t.Errorf("lcat: reply %+v, %d bytes read back, want the file's %d", reply, len(readBack), len(data))
	}
	if refused.OK || refused.Error != "permission denied: /etc/passwd is outside the directories resh allows (add one with -allow)" {
		t.Errorf("lcat /etc/passwd: reply %+v", refused)
	}
	got, err := os.ReadFile(filepath.Join(dir, "out.txt"))
	if !result.OK || result.Bytes != 16 || err != nil || string(got) != "written by ltee\n" {
		t.Errorf("ltee: result %+v, file %q (%v)", result, got, err)
	}
}

// TestRunInterruptWhileDisconnected: a signal cannot be forwarded while
// the transport is down, so it ends resh at once (status 255) instead of
// leaving the user waiting for the resume.
func TestRunInterruptWhileDisconnected(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	lost := make(chan struct{})
	var mu sync.Mutex
	var transport net.Conn
	dials := 0
	cfg := &connection.Config{
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			mu.Lock()
			defer mu.Unlock()
			dials++
			if dials > 1 {
				return nil, errors.New("test: network unreachable")
			}
			c, err := (&net.Dialer{}).DialContext(ctx, network, address)
			transport = c
			return c, err
		},
		OnState: func(ev connection.StateEvent) {
			if !ev.Connected && ev.Attempt == 0 {
				close(lost)
			}
		},
	}
	port := startFake(t, func(s *fakeSession) {
		s.noWait = true
		s.send(proto.TypeStarted, proto.Started{})
		// The client half-closes stdin (empty) once it has Started.
		if _, err := io.ReadAll(s.stdin); err != nil {
			t.Error(err)
		}
		mu.Lock()
		transport.Close() // the network goes away; redials fail
		mu.Unlock()
		select {
		case <-lost:
		case <-time.After(10 * time.Second):
			t.Error("the client did not notice the lost transport")
		}
		sigs <- syscall.SIGINT
	})
	code, _, stderr := runClientConfig(t, port, Options{Command: "sleep 100"}, "", "", sigs, cfg)
	if code != 255 || stderr != "resh: interrupt while the connection was lost\n" {
		t.Fatalf("exit %d stderr %q; want 255 and one line", code, stderr)
	}
}

// TestRunAllOutputBeforeExit: every byte of stdout and stderr is written out
// before resh exits, each to its own stream.
func TestRunAllOutputBeforeExit(t *testing.T) {
	out := strings.Repeat("o", 3<<20)
	errOut := strings.Repeat("e", 1<<20)
	port := startFake(t, func(s *fakeSession) {
		s.send(proto.TypeStarted, proto.Started{})
		var wg sync.WaitGroup
		for _, c := range []struct {
			st   *yamux.Stream
			data string
		}{{s.stdout, out}, {s.stderr, errOut}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.write(c.st, c.data)
				c.st.Close()
			}()
		}
		wg.Wait()
		s.send(proto.TypeExit, proto.Exit{Code: 1})
	})
	code, stdout, stderr := runClient(t, port, Options{Command: "x"}, "", "", nil)
	if code != 1 || stdout != out || stderr != errOut {
		t.Fatalf("exit %d, %d bytes on stdout and %d on stderr; want 1, %d and %d", code, len(stdout), len(stderr), len(out), len(errOut))
	}
}
