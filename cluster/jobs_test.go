package cluster_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/cluster"
	"resh/jobhost"
	"resh/proto"
)

// jobReq is a job stream as a fake executor got it.
type jobReq struct {
	exec          string
	ty            proto.Type
	run           cluster.JobRun
	source, stdin []byte
	resume        cluster.JobResume
	drop          cluster.JobDrop
	st            *yamux.Stream // the stream, after Accept
}

// jobExec is a fake executor that takes job streams: answer decides each
// JobRun and JobResume ("" accepts, else the refusal's reason); accepted
// ones and drops go to reqs, for the test to drive.
type jobExec struct {
	*fakeExec
	answer func(jobReq) string
	reqs   chan jobReq
}

func joinJobExec(t *testing.T, m *cluster.Master, name string, maxTasks int, langs []string, held []cluster.HeldJob, answer func(jobReq) string) *jobExec {
	t.Helper()
	x := &jobExec{answer: answer, reqs: make(chan jobReq, 16)}
	j := cluster.Join{Version: cluster.LinkVersion, Name: name, MaxTasks: maxTasks, MaxCPU: 100, Languages: langs, Jobs: held}
	x.fakeExec = joinJobs(t, m, j, nil, func(st *yamux.Stream, ty proto.Type, body []byte) {
		r := jobReq{exec: name, ty: ty}
		var err error
		switch ty {
		case cluster.TypeJobRun:
			err = proto.Decode(body, &r.run)
			if err == nil {
				r.source, r.stdin = make([]byte, r.run.Size), make([]byte, r.run.StdinSize)
				if _, err = io.ReadFull(st, r.source); err == nil {
					_, err = io.ReadFull(st, r.stdin)
				}
			}
		case cluster.TypeJobResume:
			err = proto.Decode(body, &r.resume)
		case cluster.TypeJobDrop:
			_ = st.Close()
			if proto.Decode(body, &r.drop) == nil {
				x.reqs <- r
			}
			return
		}
		if err != nil {
			_ = st.Close()
			return
		}
		reason := ""
		if x.answer != nil {
			reason = x.answer(r)
		}
		if reason != "" {
			_ = proto.WriteMessage(st, cluster.TypeRefuse, cluster.Refuse{Reason: reason})
			_ = st.Close()
			return
		}
		_ = proto.WriteMessage(st, cluster.TypeAccept, cluster.Accept{})
		r.st = st
		x.reqs <- r
	})
	return x
}

// req waits for the next job stream x accepted (or a drop).
func (x *jobExec) req(t *testing.T) jobReq {
	t.Helper()
	select {
	case r := <-x.reqs:
		return r
	case <-time.After(5 * time.Second):
		t.Fatalf("executor %s got no job stream", x.name)
		return jobReq{}
	}
}

// send writes one message on a job stream.
func send(t *testing.T, st *yamux.Stream, ty proto.Type, v any) {
	t.Helper()
	require.NoError(t, proto.WriteMessage(st, ty, v))
}

// expect reads the next message on a job stream, of type ty, into v.
func expect(t *testing.T, st *yamux.Stream, ty proto.Type, v any) {
	t.Helper()
	_ = st.SetReadDeadline(time.Now().Add(5 * time.Second))
	require.NoError(t, proto.Expect(st, ty, v))
}

// runJob runs a job on m, and fails the test if it is not placed.
func runJob(t *testing.T, m *cluster.Master, run cluster.JobRun, source, stdin string) cluster.JobConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := m.RunJob(ctx, run, []byte(source), []byte(stdin))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestRunJobOverTheLink: a job goes to the executor with the language and
// the most room, with its source and stdin; its output, end, acks and
// release go over its stream, and it counts as a task until its end.
func TestRunJobOverTheLink(t *testing.T) {
	m := newMaster(t, cluster.Config{})
	joinJobExec(t, m, "big-no-py", 8, []string{"sh"}, nil, nil)
	small := joinJobExec(t, m, "small", 2, []string{"python", "sh"}, nil, nil)
	c := runJob(t, m, cluster.JobRun{ID: 7, Lease: 3, Lang: "python", Name: "p.py", Args: []string{"a"}}, "print(1)", "in")
	assert.Equal(t, "small", c.Executor())
	r := small.req(t)
	assert.Equal(t, cluster.JobRun{ID: 7, Lease: 3, Lang: "python", Name: "p.py", Args: []string{"a"}, Size: 8, StdinSize: 2}, r.run)
	assert.Equal(t, "print(1)", string(r.source))
	assert.Equal(t, "in", string(r.stdin))
	waitState(t, m, "small", proto.StateUp, 1)

	send(t, r.st, cluster.TypeJobOutput, cluster.JobOutput{Stream: cluster.JobStdout, Offset: 0, Data: []byte("1\n")})
	send(t, r.st, cluster.TypeJobOutput, cluster.JobOutput{Stream: cluster.JobStderr, Offset: 0, Data: []byte("warn")})
	out, end, err := c.Next()
	require.NoError(t, err)
	assert.Nil(t, end)
	assert.Equal(t, &cluster.JobOutput{Stream: cluster.JobStdout, Offset: 0, Data: []byte("1\n")}, out)
	out, _, err = c.Next()
	require.NoError(t, err)
	assert.Equal(t, "warn", string(out.Data))
	require.NoError(t, c.Ack(2, 4))
	var ack cluster.JobAck
	expect(t, r.st, cluster.TypeJobAck, &ack)
	assert.Equal(t, cluster.JobAck{Stdout: 2, Stderr: 4}, ack)

	require.NoError(t, c.Cancel("by the user"))
	var jc cluster.JobCancel
	expect(t, r.st, cluster.TypeJobCancel, &jc)
	assert.Equal(t, "by the user", jc.Reason)
	want := cluster.JobEnd{Verdict: proto.Verdict{Verdict: proto.VerdictCancelled, Status: -1}, Exit: proto.Exit{Code: proto.ExitCancelled}}
	send(t, r.st, cluster.TypeJobEnd, want)
	_, end, err = c.Next()
	require.NoError(t, err)
	assert.Equal(t, &want, end)
	_, _, err = c.Next()
	assert.ErrorIs(t, err, io.EOF)
	waitState(t, m, "small", proto.StateUp, 0)

	require.NoError(t, c.Release())
	expect(t, r.st, cluster.TypeJobRelease, &cluster.JobRelease{})
}

// TestRunJobRefusals: a refusal sends the job to the next executor and
// counts as that executor's load; with nobody left, ErrNoRoom at once, and
// Room tells when to try again.
func TestRunJobRefusals(t *testing.T) {
	m := newMaster(t, cluster.Config{})
	joinJobExec(t, m, "a-full", 8, []string{"sh"}, nil, func(jobReq) string { return cluster.RefuseFull })
	joinJobExec(t, m, "b-nolang", 7, []string{"sh"}, nil, func(jobReq) string { return cluster.RefuseLang })
	ok := joinJobExec(t, m, "c-one", 1, []string{"sh"}, nil, nil)
	c := runJob(t, m, cluster.JobRun{ID: 1, Lease: 1, Lang: "sh"}, "true", "")
	assert.Equal(t, "c-one", c.Executor())
	r := ok.req(t)
	waitState(t, m, "a-full", proto.StateFull, 0)
	waitState(t, m, "c-one", proto.StateFull, 1)

	for range len(m.Room()) {
		<-m.Room()
	}
	_, err := m.RunJob(context.Background(), cluster.JobRun{ID: 2, Lease: 1, Lang: "sh"}, []byte("true"), nil)
	require.ErrorIs(t, err, cluster.ErrNoRoom)
	waitState(t, m, "b-nolang", proto.StateUp, 0) // a refusal for its language is not a load

	send(t, r.st, cluster.TypeJobEnd, cluster.JobEnd{Verdict: proto.Verdict{Verdict: proto.VerdictOK}})
	_, end, err := c.Next()
	require.NoError(t, err)
	require.NotNil(t, end)
	select {
	case <-m.Room():
	case <-time.After(5 * time.Second):
		t.Fatal("no Room after the job's end")
	}
	waitState(t, m, "c-one", proto.StateUp, 0)
}

func TestRunJobLanguageError(t *testing.T) {
	m := newMaster(t, cluster.Config{})
	joinJobExec(t, m, "x", 1, []string{"sh", "c"}, nil, nil)
	_, err := m.RunJob(context.Background(), cluster.JobRun{ID: 1, Lease: 1, Lang: "java"}, nil, nil)
	var le *cluster.LanguageError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, []string{"c", "sh"}, le.Have)
	assert.Equal(t, "reshd: no executor has the language java (the executors have: c, sh)", err.Error())
	langs, any := m.Languages()
	assert.Equal(t, []string{"c", "sh"}, langs)
	assert.True(t, any)
}

func TestNoExecutorKnown(t *testing.T) {
	m := newMaster(t, cluster.Config{})
	m.Starting("local-1", "local")
	langs, any := m.Languages()
	assert.Empty(t, langs)
	assert.False(t, any)
	assert.False(t, m.Attached("local-1"))
	_, err := m.ResumeJob("local-1", cluster.JobResume{ID: 1, Lease: 1})
	assert.ErrorContains(t, err, "executor local-1 is not joined")
	m.DropJob("nobody", 1, 1) // best effort: nothing happens
}

// TestJobLostWithItsLink: a job stream whose link ends is ErrJobLost, and
// the executor is lost (OnLost); a malformed message is ErrJobLost too.
func TestJobLostWithItsLink(t *testing.T) {
	lost := make(chan string, 4)
	m := newMaster(t, cluster.Config{OnLost: func(name string) { lost <- name }})
	x := joinJobExec(t, m, "doomed", 2, []string{"sh"}, nil, nil)
	assert.True(t, m.Attached("doomed"))
	bad := runJob(t, m, cluster.JobRun{ID: 1, Lease: 1, Lang: "sh"}, "true", "")
	r := x.req(t)
	send(t, r.st, cluster.TypeJobOutput, cluster.JobOutput{Stream: 3, Offset: 0, Data: []byte("x")})
	_, _, err := bad.Next()
	require.ErrorIs(t, err, cluster.ErrJobLost)
	assert.ErrorContains(t, err, "malformed")

	c := runJob(t, m, cluster.JobRun{ID: 2, Lease: 1, Lang: "sh"}, "true", "")
	x.req(t)
	got := make(chan error, 1)
	go func() {
		_, _, err := c.Next()
		got <- err
	}()
	_ = x.mux.Close()
	select {
	case err := <-got:
		assert.ErrorIs(t, err, cluster.ErrJobLost)
	case <-time.After(5 * time.Second):
		t.Fatal("Next did not see the link's loss")
	}
	select {
	case name := <-lost:
		assert.Equal(t, "doomed", name)
	case <-time.After(5 * time.Second):
		t.Fatal("no OnLost")
	}
	assert.False(t, m.Attached("doomed"))
}

// TestOnJoinResumeAndDrop: an executor's held jobs are passed to OnJoin;
// ResumeJob re-attaches one from offsets, an unknown one is ErrUnknownJob,
// DropJob reaches the executor. A join replacing a link is not a loss.
func TestOnJoinResumeAndDrop(t *testing.T) {
	type joined struct {
		name string
		held []cluster.HeldJob
	}
	joins := make(chan joined, 4)
	var mu sync.Mutex
	var lost []string
	m := newMaster(t, cluster.Config{
		OnJoin: func(name string, held []cluster.HeldJob) { joins <- joined{name, held} },
		OnLost: func(name string) { mu.Lock(); lost = append(lost, name); mu.Unlock() },
	})
	held := []cluster.HeldJob{{ID: 4, Lease: 2}, {ID: 5, Lease: 1, Ended: true}}
	x := joinJobExec(t, m, "back", 2, []string{"sh"}, held, func(r jobReq) string {
		if r.ty == cluster.TypeJobResume && r.resume.ID != 4 {
			return cluster.RefuseUnknown
		}
		return ""
	})
	j := <-joins
	assert.Equal(t, joined{"back", held}, j)

	c, err := m.ResumeJob("back", cluster.JobResume{ID: 4, Lease: 2, Stdout: 10, Stderr: 3})
	require.NoError(t, err)
	defer c.Close()
	r := x.req(t)
	assert.Equal(t, cluster.JobResume{ID: 4, Lease: 2, Stdout: 10, Stderr: 3}, r.resume)
	waitState(t, m, "back", proto.StateUp, 1)
	send(t, r.st, cluster.TypeJobOutput, cluster.JobOutput{Stream: cluster.JobStdout, Offset: 10, Data: []byte("more")})
	out, _, err := c.Next()
	require.NoError(t, err)
	assert.Equal(t, int64(10), out.Offset)
	require.NoError(t, c.Close())
	waitState(t, m, "back", proto.StateUp, 0)

	_, err = m.ResumeJob("back", cluster.JobResume{ID: 9, Lease: 1})
	require.ErrorIs(t, err, cluster.ErrUnknownJob)

	m.DropJob("back", 5, 1)
	d := x.req(t)
	assert.Equal(t, cluster.TypeJobDrop, d.ty)
	assert.Equal(t, cluster.JobDrop{ID: 5, Lease: 1}, d.drop)

	// The same executor joins again (its link replaced): OnJoin, no OnLost.
	joinJobExec(t, m, "back", 2, []string{"sh"}, nil, nil)
	j = <-joins
	assert.Equal(t, joined{"back", nil}, j)
	mu.Lock()
	assert.Empty(t, lost)
	mu.Unlock()
}

// TestRunJobInProcess: a standalone master runs jobs on its in-process
// executor through InProcessJobs (a jobhost.Host here), and resumes and
// drops them through InProcessResume.
func TestRunJobInProcess(t *testing.T) {
	h := jobhost.New(jobhost.Config{Executor: "host"})
	defer h.Close()
	m := newMaster(t, cluster.Config{
		InProcessJobs: func(run cluster.JobRun, source, stdin []byte) (cluster.JobConn, error) {
			j, err := h.Run(run, source, stdin)
			if err != nil {
				return nil, err
			}
			return j.Conn("host", 0, 0), nil
		},
		InProcessResume: func(id, lease, stdout, stderr int64) (cluster.JobConn, error) {
			j, err := h.Resume(id, lease)
			if err != nil {
				return nil, err
			}
			return j.Conn("host", stdout, stderr), nil
		},
	})
	m.AddInProcess("host", []string{"sh"}, "v")
	assert.True(t, m.Attached("host"))
	assert.Equal(t, []string{"sh"}, m.Free())
	c := runJob(t, m, cluster.JobRun{ID: 1, Lease: 1, Lang: "sh"}, "cat; echo done", "piped ")
	var stdout []byte
	var end *cluster.JobEnd
	for end == nil {
		out, e, err := c.Next()
		require.NoError(t, err)
		if out != nil {
			stdout = append(stdout, out.Data...)
		}
		end = e
	}
	assert.Equal(t, "piped done\n", string(stdout))
	assert.Equal(t, proto.VerdictOK, end.Verdict.Verdict)
	assert.Equal(t, "host", end.Verdict.Executor)

	r, err := m.ResumeJob("host", cluster.JobResume{ID: 1, Lease: 1, Stdout: 6})
	require.NoError(t, err)
	out, _, err := r.Next()
	require.NoError(t, err)
	assert.Equal(t, "done\n", string(out.Data))
	require.NoError(t, r.Close())
	_, err = m.ResumeJob("host", cluster.JobResume{ID: 1, Lease: 2})
	require.ErrorIs(t, err, cluster.ErrUnknownJob)

	m.DropJob("host", 1, 1)
	assert.Empty(t, h.Held())
	require.NoError(t, c.Close())
}

// TestRunJobContext: a job whose context ends while offered is not placed.
func TestRunJobContext(t *testing.T) {
	m := newMaster(t, cluster.Config{})
	stuck := make(chan struct{})
	defer close(stuck)
	joinJobExec(t, m, "slow", 1, []string{"sh"}, nil, func(jobReq) string { <-stuck; return "" })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := m.RunJob(ctx, cluster.JobRun{ID: 1, Lease: 1, Lang: "sh"}, []byte("true"), nil)
	require.True(t, errors.Is(err, context.DeadlineExceeded), "got %v", err)
	waitState(t, m, "slow", proto.StateUp, 0)
}
