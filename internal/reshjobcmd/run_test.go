package reshjobcmd

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/job"
	"resh/proto"
)

const pySource = "import sys\nprint('out:' + sys.stdin.read())\n"

// run submits the job with its stdin, then follows it in the same session.
func TestRunOK(t *testing.T) {
	var hello proto.Hello
	var source, stdin string
	f := startFake(t, func(s *fakeSession) {
		hello, source = s.hello, s.source
		stdin = s.stdinRest() // reshjob half-closes after its stdin
		s.send(proto.TypeSubmitted, proto.Submitted{ID: 42})
		s.send(proto.TypeJobState, proto.JobState{State: "queued"})
		s.send(proto.TypeJobState, proto.JobState{State: "running", Executor: "e1", Attempt: 1})
		s.finish("out:"+stdin, "warning\n", proto.Verdict{Verdict: proto.VerdictOK}, proto.Exit{})
	})
	file := program(t, "hello.py", pySource)
	code, stdout, stderr := runJob(t, f.port, "input\nbytes", "run", "-time", "2s", "-mem", "64M", file, "a", "-b")
	assert.Equal(t, 0, code, "stderr %q", stderr)
	assert.Equal(t, "out:input\nbytes", stdout)
	assert.Equal(t, "warning\n", stderr, "the program's stderr only: no state lines without -v off a terminal")
	assert.Equal(t, proto.QueryRun, hello.Query)
	assert.Nil(t, hello.JobRequest)
	want := proto.Job{Lang: "python", Name: "hello.py", Size: int64(len(pySource)), Args: []string{"a", "-b"},
		Limits: proto.JobLimits{WallMS: 2000, Memory: 64 << 20}}
	assert.Equal(t, want, *hello.Job)
	assert.Equal(t, pySource, source)
	assert.Equal(t, "input\nbytes", stdin)
}

// -v tells the job's id and each change of its state.
func TestRunVerbose(t *testing.T) {
	f := startFake(t, func(s *fakeSession) {
		s.stdinRest()
		s.send(proto.TypeSubmitted, proto.Submitted{ID: 42})
		s.send(proto.TypeJobState, proto.JobState{State: "queued"})
		s.send(proto.TypeJobState, proto.JobState{State: "running", Executor: "e1", Attempt: 1})
		s.send(proto.TypeJobState, proto.JobState{State: "queued"})
		s.send(proto.TypeJobState, proto.JobState{State: "running", Executor: "e\x1b2", Attempt: 2})
		s.finish("done\n", "", proto.Verdict{Verdict: proto.VerdictOK}, proto.Exit{})
	})
	code, stdout, stderr := runJobWith(t, f.port, []string{"-v"}, make(chan os.Signal), "", "run", program(t, "a.py", pySource))
	assert.Equal(t, 0, code)
	assert.Equal(t, "done\n", stdout)
	assert.Equal(t, "reshjob: job 42 submitted\nreshjob: job 42 queued\nreshjob: job 42 running on e1\n"+
		"reshjob: job 42 queued\nreshjob: job 42 running on e?2 (attempt 2)\n", stderr)
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
		{"cancelled", "a.py", proto.Verdict{Verdict: proto.VerdictCancelled, Detail: "cancelled: by its owner"}, proto.Exit{Code: proto.ExitCancelled}, "", 119,
			"reshjob: CANCELLED (cancelled: by its owner)"},
		{"executor lost", "a.py", proto.Verdict{Verdict: proto.VerdictExecutorLost, Detail: "executor e1 lost on each of 2 attempts"},
			proto.Exit{Code: proto.ExitExecutorLost}, "", 120, "reshjob: EXECUTOR_LOST (executor e1 lost on each of 2 attempts)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := startFake(t, func(s *fakeSession) {
				s.stdinRest()
				s.send(proto.TypeSubmitted, proto.Submitted{ID: 1})
				s.finish("partial", c.stderr, c.verdict, c.exit)
			})
			code, stdout, stderr := runJob(t, f.port, "", "run", program(t, c.file, "x"))
			assert.Equal(t, c.code, code)
			assert.Equal(t, "partial", stdout)
			assert.Equal(t, c.stderr+c.line+"\n", stderr)
		})
	}
}

func TestRunJSON(t *testing.T) {
	v := proto.Verdict{Verdict: proto.VerdictRuntimeError, Status: 1, WallMS: 12, CPUMS: 5, PeakMemory: 3 << 20,
		Stdout: 6, Stderr: 0, Executor: "e1"}
	f := startFake(t, func(s *fakeSession) {
		s.stdinRest()
		s.send(proto.TypeSubmitted, proto.Submitted{ID: 1})
		s.finish("hello\n", "", v, proto.Exit{Code: 1})
	})
	code, stdout, stderr := runJob(t, f.port, "", "run", "-json", program(t, "a.c", "int main(){return 1;}"))
	assert.Equal(t, 1, code)
	assert.Equal(t, "reshjob: RUNTIME_ERROR (exit status 1)\n", stderr)
	out, obj, ok := strings.Cut(stdout, "\n")
	require.True(t, ok, "stdout %q", stdout)
	assert.Equal(t, "hello", out)
	var fields map[string]any
	require.NoError(t, json.Unmarshal([]byte(obj), &fields))
	assert.Equal(t, map[string]any{"verdict": "RUNTIME_ERROR", "status": 1.0, "signal": 0.0, "wall_ms": 12.0, "cpu_ms": 5.0,
		"peak_memory": float64(3 << 20), "stdout": 6.0, "stderr": 0.0, "executor": "e1", "exit": 1.0}, fields)
}

func TestRunSourceFromStdin(t *testing.T) {
	var hello proto.Hello
	var source, stdin string
	f := startFake(t, func(s *fakeSession) {
		hello, source = s.hello, s.source
		stdin = s.stdinRest()
		s.send(proto.TypeSubmitted, proto.Submitted{ID: 1})
		s.finish("ok\n", "", proto.Verdict{Verdict: proto.VerdictOK}, proto.Exit{})
	})
	code, stdout, stderr := runJob(t, f.port, "echo ok\n", "run", "-lang", "sh", "-", "x")
	assert.Equal(t, 0, code, "stderr %q", stderr)
	assert.Equal(t, "ok\n", stdout)
	assert.Equal(t, proto.Job{Lang: "sh", Size: 8, Args: []string{"x"}}, *hello.Job)
	assert.Equal(t, "echo ok\n", source)
	assert.Empty(t, stdin, "the program's stdin: none")
}

func TestRunError(t *testing.T) {
	f := startFake(t, func(s *fakeSession) {
		s.send(proto.TypeError, proto.Error{Message: "reshd: no executor has the language python"})
	})
	code, stdout, stderr := runJob(t, f.port, "", "run", program(t, "a.py", pySource))
	assert.Equal(t, 255, code)
	assert.Empty(t, stdout)
	assert.Equal(t, "reshjob: reshd: no executor has the language python\n", stderr)
}

func TestRunNoVerdict(t *testing.T) {
	f := startFake(t, func(s *fakeSession) {
		s.send(proto.TypeSubmitted, proto.Submitted{ID: 1})
		s.stdout.Close()
		s.stderr.Close()
		s.send(proto.TypeExit, proto.Exit{})
	})
	code, _, stderr := runJob(t, f.port, "", "run", program(t, "a.py", pySource))
	assert.Equal(t, 255, code)
	assert.Contains(t, stderr, "reshjob: the server sent no verdict")
}

// A server that predates a query runs a login shell (Started), or, if it
// knows queries but not jobs', says the query is unknown: reshjob says
// that it is older than durable jobs.
func TestOlderServer(t *testing.T) {
	for _, args := range [][]string{{"run", "a.py"}, {"submit", "a.py"}, {"attach", "1"}, {"ls"}, {"status", "1"}, {"cancel", "1"}} {
		for _, answer := range []string{"started", "unknown query"} {
			t.Run(args[0]+" "+answer, func(t *testing.T) {
				f := startFake(t, func(s *fakeSession) {
					if answer == "started" {
						s.send(proto.TypeStarted, proto.Started{PID: 99})
					} else {
						s.send(proto.TypeError, proto.Error{Message: `reshd: unknown query "` + s.hello.Query + `"`})
					}
				})
				if args[0] == "run" || args[0] == "submit" {
					args = []string{args[0], program(t, "a.py", pySource)}
				}
				code, stdout, stderr := runJob(t, f.port, "", args...)
				assert.Equal(t, 255, code)
				assert.Empty(t, stdout)
				assert.Equal(t, "reshjob: reshd at 127.0.0.1:"+itoa(f.port)+" cannot keep jobs: it is older than durable jobs\n", stderr)
			})
		}
	}
}

// A signal is sent on: the server cancels the job, whose verdict and
// Exit say so.
func TestRunInterrupted(t *testing.T) {
	sigs := make(chan os.Signal)
	var got proto.Signal
	f := startFake(t, func(s *fakeSession) {
		s.send(proto.TypeSubmitted, proto.Submitted{ID: 5})
		s.write("working\n", "")
		sigs <- syscall.SIGWINCH // ignored
		sigs <- syscall.SIGINT
		if err := proto.Expect(s.control, proto.TypeSignal, &got); err != nil {
			t.Error(err)
		}
		s.finish("", "", proto.Verdict{Verdict: proto.VerdictCancelled, Status: -1, Signal: 2, Detail: "cancelled: interrupt from its client"},
			proto.Exit{Signal: 2})
	})
	code, stdout, stderr := runJobSignals(t, f.port, sigs, "", "run", program(t, "a.py", pySource))
	assert.Equal(t, 130, code)
	assert.Equal(t, "working\n", stdout)
	assert.Equal(t, "reshjob: CANCELLED (cancelled: interrupt from its client)\n", stderr)
	assert.Equal(t, "INT", got.Name)
}

// The job cancelled after reshjob's signal exits with it, even when the
// server's Exit says 119 (a session re-attached after the one the signal
// went on was lost: the server cannot know the signal).
func TestRunInterruptedExit119(t *testing.T) {
	sigs := make(chan os.Signal)
	f := startFake(t, func(s *fakeSession) {
		s.send(proto.TypeSubmitted, proto.Submitted{ID: 5})
		sigs <- syscall.SIGTERM
		var got proto.Signal
		if err := proto.Expect(s.control, proto.TypeSignal, &got); err != nil {
			t.Error(err)
		}
		s.finish("", "", proto.Verdict{Verdict: proto.VerdictCancelled, Status: -1, Detail: "cancelled: TERM"}, proto.Exit{Code: proto.ExitCancelled})
	})
	code, _, stderr := runJobSignals(t, f.port, sigs, "", "run", "-json", program(t, "a.py", pySource))
	assert.Equal(t, 143, code)
	assert.Equal(t, "reshjob: CANCELLED (cancelled: TERM)\n", stderr)
}

// A second signal ends reshjob without waiting for the job's end.
func TestRunInterruptedTwice(t *testing.T) {
	sigs := make(chan os.Signal)
	f := startFake(t, func(s *fakeSession) {
		s.send(proto.TypeSubmitted, proto.Submitted{ID: 5})
		s.send(proto.TypeJobState, proto.JobState{State: "running", Executor: "e1", Attempt: 1})
		sigs <- syscall.SIGTERM
		var got proto.Signal
		if err := proto.Expect(s.control, proto.TypeSignal, &got); err != nil || got.Name != "TERM" {
			t.Errorf("Signal %+v, %v; want TERM", got, err)
		}
		sigs <- syscall.SIGINT // the job did not end yet
	})
	code, stdout, stderr := runJobSignals(t, f.port, sigs, "", "run", program(t, "a.py", pySource))
	assert.Equal(t, 143, code)
	assert.Empty(t, stdout)
	assert.Equal(t, "reshjob: SIGTERM: job 5 is being cancelled; not waiting for its end\n", stderr)
}

func TestMaxSourceIsReshds(t *testing.T) {
	assert.Equal(t, job.MaxSource, MaxSource)
}

func TestRunTooLarge(t *testing.T) {
	big := program(t, "big.py", "")
	require.NoError(t, os.Truncate(big, MaxSource+1))
	code, stdout, stderr := runJob(t, 1, "", "run", big)
	assert.Equal(t, 255, code)
	assert.Empty(t, stdout)
	assert.Equal(t, "reshjob: "+big+" is larger than 16 MiB, the most a program may be\n", stderr)
	code, _, stderr = runJob(t, 1, strings.Repeat("x", MaxSource+1), "run", "-lang", "python", "-")
	assert.Equal(t, 255, code)
	assert.Equal(t, "reshjob: the program from stdin is larger than 16 MiB, the most a program may be\n", stderr)
	code, _, stderr = runJob(t, 1, strings.Repeat("x", MaxStdin+1), "submit", program(t, "a.py", pySource))
	assert.Equal(t, 255, code)
	assert.Equal(t, "reshjob: the program's stdin is larger than 16 MiB, the most a job keeps: give it as a file in the program, or less input\n", stderr)
}

func TestRunMissingFile(t *testing.T) {
	code, stdout, stderr := runJob(t, 1, "", "run", filepath.Join(t.TempDir(), "none.py"))
	assert.Equal(t, 255, code)
	assert.Empty(t, stdout)
	assert.True(t, strings.HasPrefix(stderr, "reshjob: cannot read the program: open "), "%q", stderr)
}

// A signal while reshjob connects (to a server that never answers) ends it.
func TestRunInterruptedConnecting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
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
	code, stdout, stderr := runJobSignals(t, ln.Addr().(*net.TCPAddr).Port, sigs, "", "run", program(t, "a.py", pySource))
	assert.Equal(t, 255, code)
	assert.Empty(t, stdout)
	assert.Equal(t, "reshjob: interrupt while connecting\n", stderr)
	ln.Close()
	for c := range held {
		c.Close()
	}
}

// TestVerdictOnItsOwnLine: the verdict line starts a line even when the
// program's stderr did not end with a newline.
func TestVerdictOnItsOwnLine(t *testing.T) {
	c := counter{w: &strings.Builder{}}
	assert.False(t, c.unterminated(), "nothing written is not an unterminated line")
	_, _ = c.Write([]byte("oops"))
	assert.True(t, c.unterminated())
	_, _ = c.Write([]byte("\n"))
	assert.False(t, c.unterminated())
	assert.EqualValues(t, 5, c.count())
}

func itoa(n int) string { return strconv.Itoa(n) }
