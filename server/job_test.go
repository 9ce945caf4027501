package server

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/cluster"
	"resh/proto"
)

// submit opens a session to srv that submits src in language lng with
// args, then sends stdin (and its end if closeStdin).
func submit(t *testing.T, srv *Server, lng, src string, args []string, limits proto.JobLimits, stdin string, closeStdin bool) *client {
	t.Helper()
	c := dial(t, srv, proto.Hello{Job: &proto.Job{Lang: lng, Name: "prog", Size: int64(len(src)), Args: args, Limits: limits}}, nil)
	_, err := c.stdin.Write([]byte(src + stdin))
	require.NoError(t, err)
	if closeStdin {
		require.NoError(t, c.stdin.Close())
	}
	return c
}

// verdict waits for Verdict.
func (c *client) verdict() proto.Verdict {
	c.t.Helper()
	var v proto.Verdict
	_ = c.control.SetReadDeadline(time.Now().Add(testTimeout))
	if err := proto.Expect(c.control, proto.TypeVerdict, &v); err != nil {
		c.t.Fatalf("waiting for Verdict: %v", err)
	}
	return v
}

func TestJobSession(t *testing.T) {
	srv := startServer(t, &Config{ExecutorName: "exec-1"})
	src := "read line\necho \"out $1 $2 [$line]\"\necho err >&2\nexit 3\n"
	c := submit(t, srv, "sh", src, []string{"a", "b c"}, proto.JobLimits{}, "the input\n", true)
	c.started()
	assert.Equal(t, "out a b c [the input]\n", readAll(t, c.stdout))
	assert.Equal(t, "err\n", readAll(t, c.stderr))
	v := c.verdict()
	assert.Equal(t, proto.VerdictRuntimeError, v.Verdict, "%+v", v)
	assert.Equal(t, 3, v.Status)
	assert.Equal(t, "exec-1", v.Executor)
	assert.Equal(t, int64(len("out a b c [the input]\n")), v.Stdout)
	assert.False(t, v.Unsafe)
	assert.Equal(t, proto.Exit{Code: 3}, c.exit())
}

func TestJobCompileError(t *testing.T) {
	srv := startServer(t, nil)
	c := submit(t, srv, "c", "int main(void) { return nope; }\n", nil, proto.JobLimits{}, "", true)
	c.started()
	assert.Empty(t, readAll(t, c.stdout))
	assert.Contains(t, readAll(t, c.stderr), "nope")
	v := c.verdict()
	assert.Equal(t, proto.VerdictCompileError, v.Verdict, "%+v", v)
	assert.Equal(t, proto.Exit{Code: proto.ExitCompileError}, c.exit())
}

// TestJobUnknownLanguage: a language the master places on this executor
// but that it does not have is refused with an Error.
func TestJobUnknownLanguage(t *testing.T) {
	m := cluster.NewMaster(cluster.Config{})
	m.AddInProcess("here", []string{"cobol", "sh"}, "test")
	srv := startServer(t, &Config{Master: m})
	c := submit(t, srv, "cobol", "DISPLAY 'HI'.", nil, proto.JobLimits{}, "", true)
	var s proto.Started
	_ = c.control.SetReadDeadline(time.Now().Add(testTimeout))
	err := proto.Expect(c.control, proto.TypeStarted, &s)
	var re *proto.RemoteError
	require.ErrorAs(t, err, &re)
	assert.True(t, strings.HasPrefix(re.Message, "reshd: no language cobol here (have: "), re.Message)
	assert.Contains(t, re.Message, "sh")
}

// TestJobLiveOutput: output comes while the program runs, its stdin is
// streamed, and a Signal from the client kills it.
func TestJobLiveOutput(t *testing.T) {
	srv := startServer(t, nil)
	src := "echo up\nread line\necho \"got $line\"\nsleep 1000\n"
	c := submit(t, srv, "sh", src, nil, proto.JobLimits{}, "", false)
	c.started()
	var out bytes.Buffer
	until(t, c.stdout, &out, "up\n")
	_, err := c.stdin.Write([]byte("hello\n"))
	require.NoError(t, err)
	until(t, c.stdout, &out, "got hello\n")
	c.send(proto.TypeSignal, proto.Signal{Name: "INT"})
	v := c.verdict()
	assert.Equal(t, proto.VerdictRuntimeError, v.Verdict, "%+v", v)
	assert.Equal(t, 2, v.Signal)
	assert.Equal(t, proto.Exit{Signal: 2}, c.exit())
}

func TestJobUnsafe(t *testing.T) {
	srv := startServer(t, &Config{UnsafeNoSandbox: true})
	c := submit(t, srv, "sh", "echo hi\necho err >&2\n", nil, proto.JobLimits{}, "", true)
	c.started()
	assert.Equal(t, "hi\n", readAll(t, c.stdout))
	assert.Equal(t, "err\n", readAll(t, c.stderr))
	v := c.verdict()
	assert.Equal(t, proto.VerdictOK, v.Verdict, "%+v", v)
	assert.True(t, v.Unsafe)
	assert.Equal(t, proto.Exit{}, c.exit())
}

// TestJobTimeLimit: limits asked per job apply.
func TestJobTimeLimit(t *testing.T) {
	srv := startServer(t, nil)
	c := submit(t, srv, "sh", "sleep 1000\n", nil, proto.JobLimits{WallMS: 200}, "", true)
	c.started()
	v := c.verdict()
	assert.Equal(t, proto.VerdictTimeLimit, v.Verdict, "%+v", v)
	assert.Equal(t, proto.Exit{Code: proto.ExitTimeLimit}, c.exit())
}

// TestJobShutdown: a server shutting down kills the program and still
// says how it ended.
func TestJobShutdown(t *testing.T) {
	// Not startServer: its cleanup shuts the server down again.
	srv, err := Listen("127.0.0.1:0", nil)
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	c := submit(t, srv, "sh", "echo up\nsleep 1000\n", nil, proto.JobLimits{}, "", true)
	c.started()
	var out bytes.Buffer
	until(t, c.stdout, &out, "up\n")
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(t.Context()) }()
	v := c.verdict()
	assert.Equal(t, proto.VerdictSandboxError, v.Verdict, "%+v", v)
	assert.Contains(t, v.Detail, "shutting down")
	assert.Equal(t, proto.Exit{Code: proto.ExitSandboxError}, c.exit())
	c.close()
	require.NoError(t, <-shut)
	require.NoError(t, <-served)
}

// TestJobTTY: a Hello with Job and tty runs the program without a
// terminal: its stderr apart, its stdin's end seen.
func TestJobTTY(t *testing.T) {
	srv := startServer(t, nil)
	src := "cat\necho err >&2\ntest -t 0 || echo 'no tty'\n"
	c := dial(t, srv, proto.Hello{TTY: true, Job: &proto.Job{Lang: "sh", Size: int64(len(src))}}, nil)
	_, err := c.stdin.Write([]byte(src + "in\n"))
	require.NoError(t, err)
	require.NoError(t, c.stdin.Close())
	c.started()
	assert.Equal(t, "in\nno tty\n", readAll(t, c.stdout))
	assert.Equal(t, "err\n", readAll(t, c.stderr))
	assert.Equal(t, proto.VerdictOK, c.verdict().Verdict)
	assert.Equal(t, proto.Exit{}, c.exit())
}

// TestJobShortSource: a stdin that ends before the source does is refused.
func TestJobShortSource(t *testing.T) {
	srv := startServer(t, nil)
	c := dial(t, srv, proto.Hello{Job: &proto.Job{Lang: "sh", Size: 100}}, nil)
	_, err := c.stdin.Write([]byte("echo hi\n"))
	require.NoError(t, err)
	require.NoError(t, c.stdin.Close())
	var s proto.Started
	_ = c.control.SetReadDeadline(time.Now().Add(testTimeout))
	err = proto.Expect(c.control, proto.TypeStarted, &s)
	var re *proto.RemoteError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "reshd: the program's source ended after 8 of 100 bytes", re.Message)
}
