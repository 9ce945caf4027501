package server

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/cluster"
	"resh/jobhost"
	"resh/proto"
	"resh/scheduler"
	"resh/store"
)

// startJobServer is a standalone reshd keeping durable jobs: a SQLite
// store, a Scheduler, and its in-process executor "here" running sh
// programs without the sandbox.
func startJobServer(t *testing.T) *Server {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "jobs.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	host := jobhost.New(jobhost.Config{Unsafe: true, Executor: "here"})
	t.Cleanup(host.Close)
	var sch *scheduler.Scheduler
	run, resume := InProcessJobs(host, "here")
	m := cluster.NewMaster(cluster.Config{
		InProcessJobs: run, InProcessResume: resume,
		OnJoin: func(e string, held []cluster.HeldJob) { sch.OnJoin(e, held) },
		OnLost: func(e string) { sch.OnLost(e) },
	})
	m.AddInProcess("here", []string{"sh"}, "test")
	sch, err = scheduler.New(scheduler.Config{Store: st, Cluster: scheduler.MasterCluster(m)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = sch.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return startServer(t, &Config{Master: m, Jobs: sch, JobAdmins: []string{"SHA256:admin"}})
}

// submitHello is a Hello submitting an sh program of src.
func submitHello(query, src string) proto.Hello {
	return proto.Hello{Query: query, Job: &proto.Job{Lang: "sh", Name: "a.sh", Size: int64(len(src))}}
}

// sendProgram writes src and stdin on the client's stdin and half-closes it.
func (c *client) sendProgram(src, stdin string) {
	c.t.Helper()
	_, err := io.WriteString(c.stdin, src+stdin)
	require.NoError(c.t, err)
	require.NoError(c.t, c.stdin.Close())
}

// expect reads the next control message, of type want, into v.
func (c *client) expect(want proto.Type, v any) {
	c.t.Helper()
	_ = c.control.SetReadDeadline(time.Now().Add(testTimeout))
	require.NoError(c.t, proto.Expect(c.control, want, v))
}

// run: Submitted, JobState, the output, Verdict and Exit; then the job is
// listed, shown, and attached again from offsets.
func TestJobRunThenQueries(t *testing.T) {
	srv := startJobServer(t)
	src := "read x; echo out $x; echo err >&2; exit 3\n"
	c := dial(t, srv, submitHello(proto.QueryRun, src), nil)
	c.sendProgram(src, "in\n")
	var sub proto.Submitted
	c.expect(proto.TypeSubmitted, &sub)
	assert.Equal(t, int64(1), sub.ID)
	stdout := make(chan string, 1)
	go func() { b, _ := io.ReadAll(c.stdout); stdout <- string(b) }()
	assert.Equal(t, "err\n", readAll(t, c.stderr))
	assert.Equal(t, "out in\n", <-stdout)
	// JobStates (queued and/or running), then the Verdict and Exit.
	var v proto.Verdict
	for {
		_ = c.control.SetReadDeadline(time.Now().Add(testTimeout))
		typ, body, err := proto.ReadMessage(c.control)
		require.NoError(t, err)
		if typ == proto.TypeJobState {
			continue
		}
		require.Equal(t, proto.TypeVerdict, typ)
		require.NoError(t, proto.Decode(body, &v))
		break
	}
	assert.Equal(t, proto.VerdictRuntimeError, v.Verdict)
	assert.Equal(t, "here", v.Executor)
	assert.Equal(t, proto.Exit{Code: 3}, c.exit())

	c = dial(t, srv, proto.Hello{Query: proto.QueryJobs, JobRequest: &proto.JobRequest{All: true}}, nil)
	var list proto.Jobs
	c.expect(proto.TypeJobs, &list)
	require.Len(t, list.Jobs, 1)
	in := list.Jobs[0]
	assert.Equal(t, "finished", in.State)
	assert.Equal(t, InsecureOwner, in.Owner)
	assert.Equal(t, &proto.Exit{Code: 3}, in.Exit)
	assert.Equal(t, int64(7), in.StdoutLen)

	c = dial(t, srv, proto.Hello{Query: proto.QueryJob, JobRequest: &proto.JobRequest{ID: 1}}, nil)
	c.expect(proto.TypeJobs, &list)
	require.Len(t, list.Jobs, 1)

	c = dial(t, srv, proto.Hello{Query: proto.QueryAttach, JobRequest: &proto.JobRequest{ID: 1, Stdout: 4, Stderr: 4}}, nil)
	assert.Equal(t, "in\n", readAll(t, c.stdout))
	assert.Equal(t, "", readAll(t, c.stderr))
	c.expect(proto.TypeVerdict, &v)
	assert.Equal(t, proto.Exit{Code: 3}, c.exit())

	c = dial(t, srv, proto.Hello{Query: proto.QueryCancel, JobRequest: &proto.JobRequest{ID: 1}}, nil)
	var e proto.Error
	c.expect(proto.TypeError, &e)
	assert.Equal(t, "reshd: job 1 has ended (finished)", e.Message)
	c = dial(t, srv, proto.Hello{Query: proto.QueryJob, JobRequest: &proto.JobRequest{ID: 9}}, nil)
	c.expect(proto.TypeError, &e)
	assert.Equal(t, "reshd: no job 9", e.Message)
	c = dial(t, srv, proto.Hello{Query: proto.QueryAttach}, nil)
	c.expect(proto.TypeError, &e)
	assert.Equal(t, "reshd: the attach query needs the job's id (job_request.id)", e.Message)
}

// submit answers Submitted once the job is stored; a Signal from an
// attached client cancels the job, and its Exit is that signal.
func TestJobSubmitThenSignal(t *testing.T) {
	srv := startJobServer(t)
	src := "echo started; exec sleep 60\n"
	c := dial(t, srv, submitHello(proto.QuerySubmit, src), nil)
	c.sendProgram(src, "")
	var sub proto.Submitted
	c.expect(proto.TypeSubmitted, &sub)
	_ = c.control.SetReadDeadline(time.Now().Add(testTimeout))
	_, _, err := proto.ReadMessage(c.control)
	require.ErrorIs(t, err, io.EOF, "the session ends after Submitted")

	c = dial(t, srv, proto.Hello{Query: proto.QueryAttach, JobRequest: &proto.JobRequest{ID: sub.ID}}, nil)
	buf := make([]byte, 8)
	_, err = io.ReadFull(c.stdout, buf)
	require.NoError(t, err)
	assert.Equal(t, "started\n", string(buf))
	c.send(proto.TypeSignal, proto.Signal{Name: "INT"})
	var v proto.Verdict
	for {
		_ = c.control.SetReadDeadline(time.Now().Add(testTimeout))
		typ, body, err := proto.ReadMessage(c.control)
		require.NoError(t, err)
		if typ == proto.TypeVerdict {
			require.NoError(t, proto.Decode(body, &v))
			break
		}
	}
	assert.Equal(t, proto.VerdictCancelled, v.Verdict)
	assert.Equal(t, proto.Exit{Signal: 2}, c.exit())

	c = dial(t, srv, proto.Hello{Query: proto.QueryJob, JobRequest: &proto.JobRequest{ID: sub.ID}}, nil)
	var list proto.Jobs
	c.expect(proto.TypeJobs, &list)
	assert.Equal(t, "cancelled", list.Jobs[0].State)
	assert.Equal(t, "the attached client's signal INT", list.Jobs[0].Reason)
}

// A server without Jobs refuses the queries of jobs.
func TestJobQueriesWithoutJobs(t *testing.T) {
	srv := startServer(t, nil)
	c := dial(t, srv, proto.Hello{Query: proto.QueryJobs}, nil)
	var e proto.Error
	c.expect(proto.TypeError, &e)
	assert.Contains(t, e.Message, "keeps no jobs")
}
