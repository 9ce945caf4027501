package reshjobcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"resh/client"
	"resh/connection"
	"resh/job"
	"resh/proto"
)

// fakeJob is the fake reshd's view of one submitted program.
type fakeJob struct {
	t                              *testing.T
	control, stdin, stdout, stderr *yamux.Stream
	job                            proto.Job
	source                         string
}

// startFake runs a fake reshd -insecure on 127.0.0.1 for one session: it
// reads the four streams' Opens, checks that Hello submits a job, reads
// the job's source from the stdin stream and hands it all to handler.
// It returns the port.
func startFake(t *testing.T, handler func(j *fakeJob)) int {
	t.Helper()
	ln, err := connection.Listen("tcp", "127.0.0.1:0", &connection.Config{DrainTimeout: 200 * time.Millisecond, DetachTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		<-done
		ln.Close()
	})
	go func() {
		defer close(done)
		acc, err := ln.Accept()
		if err != nil {
			t.Error(err)
			return
		}
		defer acc.Close()
		serveFake(t, acc, handler)
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func serveFake(t *testing.T, acc net.Conn, handler func(j *fakeJob)) {
	sess, err := proto.Server(acc)
	if err != nil {
		t.Error(err)
		return
	}
	defer sess.Close()
	j := &fakeJob{t: t}
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
		*[]**yamux.Stream{&j.control, &j.stdin, &j.stdout, &j.stderr}[i] = st
	}
	var hello proto.Hello
	if err := proto.Expect(j.control, proto.TypeHello, &hello); err != nil {
		t.Error(err)
		return
	}
	if hello.Version != proto.Version || hello.Job == nil || hello.Command != olderServer || hello.TTY {
		t.Errorf("Hello %+v: want a job, and the fallback command of a server that predates jobs", hello)
		return
	}
	j.job = *hello.Job
	src := make([]byte, j.job.Size)
	if _, err := io.ReadFull(j.stdin, src); err != nil {
		t.Errorf("reading %d bytes of source: %v", j.job.Size, err)
		return
	}
	j.source = string(src)
	handler(j)
	select {
	case <-sess.CloseChan():
	case <-time.After(10 * time.Second):
		t.Error("reshjob did not close the session")
	}
}

// send writes a control message; the session closed by reshjob once it
// has read Exit is not an error.
func (j *fakeJob) send(t proto.Type, v any) {
	if err := proto.WriteMessage(j.control, t, v); err != nil && !errors.Is(err, yamux.ErrSessionShutdown) {
		j.t.Error(err)
	}
}

// finish writes the program's output, closes it and sends the verdict
// and the Exit.
func (j *fakeJob) finish(stdout, stderr string, v proto.Verdict, e proto.Exit) {
	for _, w := range []struct {
		s    *yamux.Stream
		data string
	}{{j.stdout, stdout}, {j.stderr, stderr}} {
		if _, err := io.WriteString(w.s, w.data); err != nil {
			j.t.Error(err)
		}
		w.s.Close()
	}
	j.send(proto.TypeVerdict, v)
	j.send(proto.TypeExit, e)
}

// runJob runs reshjob with args after "-insecure -p PORT 127.0.0.1" and
// stdin, and returns its exit status, stdout and stderr.
func runJob(t *testing.T, port int, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := client.Env{Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr,
		Environ: []string{"HOME=" + t.TempDir()}, Signals: make(chan os.Signal)}
	all := append([]string{"-insecure", "-p", strconv.Itoa(port), "127.0.0.1"}, args...)
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

const pySource = "import sys\nprint('out:' + sys.stdin.read())\n"

func TestRunOK(t *testing.T) {
	var job proto.Job
	var source, stdin string
	port := startFake(t, func(j *fakeJob) {
		job, source = j.job, j.source
		j.send(proto.TypeQueued, proto.Queued{Ahead: 1}) // through a master
		j.send(proto.TypeStarted, proto.Started{PID: 7})
		b, err := io.ReadAll(j.stdin) // reshjob half-closes at its stdin's end
		if err != nil {
			t.Error(err)
		}
		stdin = string(b)
		j.finish("out:"+stdin, "warning\n", proto.Verdict{Verdict: proto.VerdictOK}, proto.Exit{})
	})
	file := program(t, "hello.py", pySource)
	code, stdout, stderr := runJob(t, port, "input\nbytes", "run", "-time", "2s", "-mem", "64M", file, "a", "-b")
	if code != 0 || stdout != "out:input\nbytes" || stderr != "warning\n" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 0, the program's output only", code, stdout, stderr)
	}
	want := proto.Job{Lang: "python", Name: "hello.py", Size: int64(len(pySource)), Args: []string{"a", "-b"},
		Limits: proto.JobLimits{WallMS: 2000, Memory: 64 << 20}}
	if job.Lang != want.Lang || job.Name != want.Name || job.Size != want.Size || strings.Join(job.Args, " ") != "a -b" || job.Limits != want.Limits {
		t.Errorf("job %+v, want %+v", job, want)
	}
	if source != pySource || stdin != "input\nbytes" {
		t.Errorf("source %q, stdin %q", source, stdin)
	}
}

func TestRunVerdicts(t *testing.T) {
	for _, c := range []struct {
		name    string
		file    string
		verdict proto.Verdict
		exit    proto.Exit
		stderr  string // the program's (or compiler's)
		code    int
		line    string
	}{
		{"runtime error", "a.py", proto.Verdict{Verdict: proto.VerdictRuntimeError, Status: 3}, proto.Exit{Code: 3}, "Traceback\n", 3,
			"reshjob: RUNTIME_ERROR (exit status 3)"},
		{"signal", "a.c", proto.Verdict{Verdict: proto.VerdictRuntimeError, Signal: 9}, proto.Exit{Signal: 9}, "", 137,
			"reshjob: RUNTIME_ERROR (killed by signal 9, SIGKILL)"},
		{"time limit", "a.sh", proto.Verdict{Verdict: proto.VerdictTimeLimit, Detail: "wall time 1s"}, proto.Exit{Code: proto.ExitTimeLimit}, "", 124,
			"reshjob: TIME_LIMIT (wall time 1s)"},
		{"compile error", "a.cpp", proto.Verdict{Verdict: proto.VerdictCompileError, Detail: "g++ exit status 1"}, proto.Exit{Code: proto.ExitCompileError},
			"a.cpp:1:1: error: expected unqualified-id\n", 121, "reshjob: COMPILE_ERROR (g++ exit status 1)"},
		{"memory limit", "Main.java", proto.Verdict{Verdict: proto.VerdictMemoryLimit}, proto.Exit{Code: proto.ExitMemoryLimit}, "", 123,
			"reshjob: MEMORY_LIMIT"},
	} {
		t.Run(c.name, func(t *testing.T) {
			port := startFake(t, func(j *fakeJob) {
				j.send(proto.TypeStarted, proto.Started{})
				j.finish("partial", c.stderr, c.verdict, c.exit)
			})
			code, stdout, stderr := runJob(t, port, "", "run", program(t, c.file, "x"))
			if code != c.code || stdout != "partial" || stderr != c.stderr+c.line+"\n" {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q", code, stdout, stderr, c.code, c.stderr+c.line+"\n")
			}
		})
	}
}

func TestRunJSON(t *testing.T) {
	v := proto.Verdict{Verdict: proto.VerdictRuntimeError, Status: 1, WallMS: 12, CPUMS: 5, PeakMemory: 3 << 20,
		Stdout: 6, Stderr: 0, Executor: "e1"}
	port := startFake(t, func(j *fakeJob) {
		j.send(proto.TypeStarted, proto.Started{})
		j.finish("hello\n", "", v, proto.Exit{Code: 1})
	})
	code, stdout, stderr := runJob(t, port, "", "run", "-json", program(t, "a.c", "int main(){return 1;}"))
	if code != 1 || stderr != "reshjob: RUNTIME_ERROR (exit status 1)\n" {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	out, obj, ok := strings.Cut(stdout, "\n")
	if !ok || out != "hello" || !strings.HasSuffix(obj, "}\n") || strings.Count(obj, "\n") != 1 {
		t.Fatalf("stdout %q: want the program's output, then one JSON line", stdout)
	}
	var fields map[string]any
	if err := json.Unmarshal([]byte(obj), &fields); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"verdict": "RUNTIME_ERROR", "status": 1.0, "signal": 0.0, "wall_ms": 12.0, "cpu_ms": 5.0,
		"peak_memory": float64(3 << 20), "stdout": 6.0, "stderr": 0.0, "executor": "e1", "exit": 1.0}
	for k, w := range want {
		if fields[k] != w {
			t.Errorf("%s: %v, want %v (in %s)", k, fields[k], w, obj)
		}
	}
	if len(fields) != len(want) {
		t.Errorf("fields %v, want %v", fields, want)
	}
}

func TestRunSourceFromStdin(t *testing.T) {
	var job proto.Job
	var source, stdin string
	port := startFake(t, func(j *fakeJob) {
		job, source = j.job, j.source
		j.send(proto.TypeStarted, proto.Started{})
		b, err := io.ReadAll(j.stdin)
		if err != nil {
			t.Error(err)
		}
		stdin = string(b)
		j.finish("ok\n", "", proto.Verdict{Verdict: proto.VerdictOK}, proto.Exit{})
	})
	code, stdout, stderr := runJob(t, port, "echo ok\n", "run", "-lang", "sh", "-", "x")
	if code != 0 || stdout != "ok\n" || stderr != "" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if job.Lang != "sh" || job.Name != "" || job.Size != 8 || source != "echo ok\n" || stdin != "" || strings.Join(job.Args, " ") != "x" {
		t.Errorf("job %+v, source %q, the program's stdin %q (want none)", job, source, stdin)
	}
}

func TestRunError(t *testing.T) {
	port := startFake(t, func(j *fakeJob) {
		j.send(proto.TypeError, proto.Error{Message: "no executor has the language python"})
	})
	code, stdout, stderr := runJob(t, port, "", "run", program(t, "a.py", pySource))
	if code != 255 || stdout != "" || stderr != "reshjob: no executor has the language python\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestRunGone(t *testing.T) {
	port := startFake(t, func(j *fakeJob) {
		j.send(proto.TypeStarted, proto.Started{})
		if _, err := io.WriteString(j.stdout, "before\n"); err != nil {
			t.Error(err)
		}
		j.stdout.Close()
		j.stderr.Close()
		j.send(proto.TypeGone, proto.Gone{Message: "executor e1 lost"})
	})
	code, _, stderr := runJob(t, port, "", "run", program(t, "a.py", pySource))
	if code != 255 || !strings.HasSuffix(stderr, "reshjob: executor e1 lost\n") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestRunNoVerdict(t *testing.T) {
	port := startFake(t, func(j *fakeJob) {
		j.send(proto.TypeStarted, proto.Started{})
		j.stdout.Close()
		j.stderr.Close()
		j.send(proto.TypeExit, proto.Exit{})
	})
	code, _, stderr := runJob(t, port, "", "run", program(t, "a.py", pySource))
	if code != 255 || !strings.Contains(stderr, "reshjob: the server sent no verdict") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestRunMissingFile(t *testing.T) {
	code, stdout, stderr := runJob(t, 1, "", "run", filepath.Join(t.TempDir(), "none.py"))
	if code != 255 || stdout != "" || !strings.HasPrefix(stderr, "reshjob: cannot read the program: open ") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// runJobSignals is runJob with the signals reshjob receives coming from
// sigs.
func runJobSignals(t *testing.T, port int, sigs chan os.Signal, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := client.Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
		Environ: []string{"HOME=" + t.TempDir()}, Signals: sigs}
	all := append([]string{"-insecure", "-p", strconv.Itoa(port), "127.0.0.1"}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := Run(ctx, all, env)
	return code, stdout.String(), stderr.String()
}

// A signal is sent on to the program, which the server kills: its verdict
// and status say so.
func TestRunInterrupted(t *testing.T) {
	sigs := make(chan os.Signal)
	var got proto.Signal
	port := startFake(t, func(j *fakeJob) {
		j.send(proto.TypeStarted, proto.Started{})
		if _, err := io.WriteString(j.stdout, "working\n"); err != nil {
			t.Error(err)
		}
		sigs <- syscall.SIGWINCH // ignored
		sigs <- syscall.SIGINT   // taken once the program runs
		if err := proto.Expect(j.control, proto.TypeSignal, &got); err != nil {
			t.Error(err)
		}
		j.finish("", "", proto.Verdict{Verdict: proto.VerdictRuntimeError, Status: -1, Signal: 2, Detail: "killed by the client's signal interrupt"},
			proto.Exit{Signal: 2})
	})
	code, stdout, stderr := runJobSignals(t, port, sigs, "run", program(t, "a.py", pySource))
	if code != 130 || stdout != "working\n" || stderr != "reshjob: RUNTIME_ERROR (killed by the client's signal interrupt)\n" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 130", code, stdout, stderr)
	}
	if got.Name != "INT" {
		t.Errorf("signal sent %+v, want INT", got)
	}
}

// A second signal ends reshjob without waiting for the program (which the
// end of the session cancels).
func TestRunInterruptedTwice(t *testing.T) {
	sigs := make(chan os.Signal)
	port := startFake(t, func(j *fakeJob) {
		j.send(proto.TypeStarted, proto.Started{})
		sigs <- syscall.SIGTERM
		var got proto.Signal
		if err := proto.Expect(j.control, proto.TypeSignal, &got); err != nil || got.Name != "TERM" {
			t.Errorf("Signal %+v, %v; want TERM", got, err)
		}
		sigs <- syscall.SIGINT // the program did not end yet
	})
	code, stdout, stderr := runJobSignals(t, port, sigs, "run", program(t, "a.py", pySource))
	if code != 143 || stdout != "" || stderr != "reshjob: SIGTERM: the job is cancelled\n" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 143", code, stdout, stderr)
	}
}

func TestRunInterruptedWhileQueued(t *testing.T) {
	sigs := make(chan os.Signal)
	port := startFake(t, func(j *fakeJob) {
		j.send(proto.TypeQueued, proto.Queued{Ahead: 2})
		sigs <- syscall.SIGTERM // taken by the watch of the queue
	})
	code, stdout, stderr := runJobSignals(t, port, sigs, "run", program(t, "a.py", pySource))
	if code != 255 || stdout != "" || stderr != "reshjob: terminated while waiting for a free executor\n" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 255", code, stdout, stderr)
	}
}

func TestMaxSourceIsReshds(t *testing.T) {
	if MaxSource != job.MaxSource {
		t.Errorf("MaxSource %d, reshd's %d", MaxSource, job.MaxSource)
	}
}

func TestRunTooLarge(t *testing.T) {
	big := program(t, "big.py", "")
	if err := os.Truncate(big, MaxSource+1); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runJob(t, 1, "", "run", big)
	if code != 255 || stdout != "" || stderr != "reshjob: "+big+" is larger than 16 MiB, the most a program may be\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, _, stderr = runJob(t, 1, strings.Repeat("x", MaxSource+1), "run", "-lang", "python", "-")
	if code != 255 || stderr != "reshjob: the program from stdin is larger than 16 MiB, the most a program may be\n" {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// A signal while reshjob connects (to a server that never answers) ends it.
func TestRunInterruptedConnecting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	held := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			held <- c
		}
		close(held)
	}()
	sigs := make(chan os.Signal)
	go func() { sigs <- syscall.SIGINT }()
	code, stdout, stderr := runJobSignals(t, ln.Addr().(*net.TCPAddr).Port, sigs, "run", program(t, "a.py", pySource))
	if code != 255 || stdout != "" || stderr != "reshjob: interrupt while connecting\n" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 255", code, stdout, stderr)
	}
	ln.Close()
	for c := range held {
		c.Close()
	}
}

// TestVerdictOnItsOwnLine: the verdict line starts a line even when the
// program's stderr did not end with a newline.
func TestVerdictOnItsOwnLine(t *testing.T) {
	var l lastByte
	l.w = io.Discard
	if l.unterminated() {
		t.Fatal("nothing written is not an unterminated line")
	}
	_, _ = l.Write([]byte("oops"))
	if !l.unterminated() {
		t.Fatal(`"oops" is an unterminated line`)
	}
	_, _ = l.Write([]byte("\n"))
	if l.unterminated() {
		t.Fatal(`"oops\n" ends its line`)
	}
}
