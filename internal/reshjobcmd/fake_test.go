package reshjobcmd

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"resh/client"
	"resh/connection"
	"resh/proto"
)

// fakeSession is one session with the fake reshd: its streams, its
// Hello and, for submit and run, the job's source.
type fakeSession struct {
	t                              *testing.T
	n                              int // sessions before this one
	conn                           net.Conn
	control, stdin, stdout, stderr *yamux.Stream
	hello                          proto.Hello
	source                         string
}

// fake is a fake reshd -insecure on 127.0.0.1, serving sessions one after
// the other with a handler.
type fake struct {
	port int
	ln   *connection.Server
	wg   sync.WaitGroup
	once sync.Once
}

// startFake runs a fake reshd: for each session it reads the four
// streams' Opens and the Hello (which must carry a query, and the command
// that a server predating queries would run) and, for submit and run, the
// job's source from the stdin stream, then hands it all to handler; then
// it waits for reshjob to close the session (or for the connection's
// end).
func startFake(t *testing.T, handler func(s *fakeSession)) *fake {
	t.Helper()
	ln, err := connection.Listen("tcp", "127.0.0.1:0", &connection.Config{DrainTimeout: 200 * time.Millisecond, DetachTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{port: ln.Addr().(*net.TCPAddr).Port, ln: ln}
	t.Cleanup(f.stop)
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for n := 0; ; n++ {
			acc, err := ln.Accept()
			if err != nil {
				return
			}
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				defer acc.Close()
				serveFake(t, n, acc, handler)
			}()
		}
	}()
	return f
}

// stop closes the listener (new connections are refused) and waits for
// the sessions to end.
func (f *fake) stop() {
	f.once.Do(func() { f.ln.Close() })
	f.wg.Wait()
}

func serveFake(t *testing.T, n int, acc net.Conn, handler func(s *fakeSession)) {
	sess, err := proto.Server(acc)
	if err != nil {
		t.Error(err)
		return
	}
	defer sess.Close()
	s := &fakeSession{t: t, n: n, conn: acc}
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
	if s.hello.Version != proto.Version || s.hello.Query == "" || s.hello.Command != harmless || s.hello.TTY {
		t.Errorf("Hello %+v: want a query, and the fallback command of a server that predates queries", s.hello)
		return
	}
	if q := s.hello.Query; q == proto.QuerySubmit || q == proto.QueryRun {
		if s.hello.Job == nil {
			t.Errorf("Hello %+v: %s without a job", s.hello, q)
			return
		}
		src := make([]byte, s.hello.Job.Size)
		if _, err := io.ReadFull(s.stdin, src); err != nil {
			t.Errorf("reading %d bytes of source: %v", s.hello.Job.Size, err)
			return
		}
		s.source = string(src)
	}
	handler(s)
	select {
	case <-sess.CloseChan():
	case <-time.After(10 * time.Second):
		t.Error("reshjob did not close the session")
	}
}

// send writes a control message; the session closed by reshjob once it
// has read Exit is not an error.
func (s *fakeSession) send(t proto.Type, v any) {
	if err := proto.WriteMessage(s.control, t, v); err != nil && !errors.Is(err, yamux.ErrSessionShutdown) {
		s.t.Error(err)
	}
}

// stdinRest reads the stdin stream to its end: the job's stdin after the
// source, or nothing.
func (s *fakeSession) stdinRest() string {
	b, err := io.ReadAll(s.stdin)
	if err != nil {
		s.t.Error(err)
	}
	return string(b)
}

// write writes the job's output.
func (s *fakeSession) write(stdout, stderr string) {
	for _, w := range []struct {
		s    *yamux.Stream
		data string
	}{{s.stdout, stdout}, {s.stderr, stderr}} {
		if _, err := io.WriteString(w.s, w.data); err != nil {
			s.t.Error(err)
		}
	}
}

// finish writes the job's last output, closes the streams and sends the
// verdict and the Exit.
func (s *fakeSession) finish(stdout, stderr string, v proto.Verdict, e proto.Exit) {
	s.write(stdout, stderr)
	s.stdout.Close()
	s.stderr.Close()
	s.send(proto.TypeVerdict, v)
	s.send(proto.TypeExit, e)
}

// cut ends the connection at once, as a reshd that is killed: what was
// written and not yet received is lost.
func (s *fakeSession) cut() {
	s.conn.(interface{ Abort() }).Abort()
}

// runJob runs reshjob with args after "-insecure -p PORT 127.0.0.1" and
// stdin, and returns its exit status, stdout and stderr.
func runJob(t *testing.T, port int, stdin string, args ...string) (int, string, string) {
	t.Helper()
	return runJobSignals(t, port, make(chan os.Signal), stdin, args...)
}

// runJobSignals is runJob with the signals reshjob receives coming from
// sigs.
func runJobSignals(t *testing.T, port int, sigs chan os.Signal, stdin string, args ...string) (int, string, string) {
	t.Helper()
	return runJobWith(t, port, nil, sigs, stdin, args...)
}

// runJobWith is runJobSignals with reshjob's options opts before HOST.
func runJobWith(t *testing.T, port int, opts []string, sigs chan os.Signal, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := client.Env{Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr,
		Environ: []string{"HOME=" + t.TempDir()}, Signals: sigs}
	all := append(append(append([]string{"-insecure", "-p", strconv.Itoa(port)}, opts...), "127.0.0.1"), args...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := Run(ctx, all, env)
	return code, stdout.String(), stderr.String()
}

// program writes a program file and returns its path.
func program(t *testing.T, name, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
