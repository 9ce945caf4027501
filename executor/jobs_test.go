package executor

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/cluster"
	"resh/jobhost"
	"resh/proto"
)

// openJob opens a stream on l, writes ty and v (and the bytes after), and
// reads the answer: Accept (the stream returned) or Refuse.
func (l *mlink) openJob(t *testing.T, ty proto.Type, v any, after ...[]byte) (*yamux.Stream, *cluster.Refuse) {
	t.Helper()
	st, err := l.mux.OpenStream()
	require.NoError(t, err)
	require.NoError(t, proto.WriteMessage(st, ty, v))
	for _, b := range after {
		_, err := st.Write(b)
		require.NoError(t, err)
	}
	_ = st.SetReadDeadline(time.Now().Add(testTimeout))
	typ, body, err := proto.ReadMessage(st)
	require.NoError(t, err)
	switch typ {
	case cluster.TypeAccept:
		return st, nil
	case cluster.TypeRefuse:
		var r cluster.Refuse
		require.NoError(t, proto.Decode(body, &r))
		_ = st.Close()
		return nil, &r
	}
	t.Fatalf("answer to a job: type %d", typ)
	return nil, nil
}

// runJob sends JobRun for a program in lang.
func (l *mlink) runJob(t *testing.T, id, lease int64, lang, source string) (*yamux.Stream, *cluster.Refuse) {
	t.Helper()
	run := cluster.JobRun{ID: id, Lease: lease, Lang: lang, Size: int64(len(source)), NoStdin: true}
	return l.openJob(t, cluster.TypeJobRun, run, []byte(source))
}

// jobMsg reads the next message on a job stream: output or end.
func jobMsg(t *testing.T, st *yamux.Stream) (*cluster.JobOutput, *cluster.JobEnd) {
	t.Helper()
	_ = st.SetReadDeadline(time.Now().Add(testTimeout))
	typ, body, err := proto.ReadMessage(st)
	require.NoError(t, err)
	switch typ {
	case cluster.TypeJobOutput:
		var o cluster.JobOutput
		require.NoError(t, proto.Decode(body, &o))
		return &o, nil
	case cluster.TypeJobEnd:
		var e cluster.JobEnd
		require.NoError(t, proto.Decode(body, &e))
		return nil, &e
	}
	t.Fatalf("on a job stream: type %d", typ)
	return nil, nil
}

// TestHeldJobSurvivesTheLink: a job keeps running when its link is lost;
// the next Join lists it, and a JobResume from the acknowledged offsets
// gets the rest, with no gap and no duplicate, then its end; released, it
// is forgotten.
func TestHeldJobSurvivesTheLink(t *testing.T) {
	m := newMaster(t, masterOptions{insecure: true})
	startExecutor(t, Config{Master: m.addr(), Insecure: true, MaxTasks: 2}, hooks{sessions: newFakeSessions()})
	l := m.link()
	assert.Empty(t, l.join.Jobs)
	st, refused := l.runJob(t, 1, 7, "sh", "echo one; sleep 0.3; echo two; sleep 600")
	require.Nil(t, refused)
	out, _ := jobMsg(t, st)
	require.NotNil(t, out)
	assert.Equal(t, cluster.JobOutput{Stream: cluster.JobStdout, Offset: 0, Data: []byte("one\n")}, *out)
	l.waitTasks(t, 1)
	require.NoError(t, proto.WriteMessage(st, cluster.TypeJobAck, cluster.JobAck{Stdout: 4}))

	// The link is lost (the master closes it: a new link follows).
	require.NoError(t, l.mux.Close())
	_ = l.conn.Close()
	l2 := m.link()
	assert.Equal(t, []cluster.HeldJob{{ID: 1, Lease: 7}}, l2.join.Jobs)
	assert.Equal(t, 1, l2.join.Tasks, "the held job still runs")

	// Below the acknowledged offset: gone, refused as unknown.
	_, refused = l2.openJob(t, cluster.TypeJobResume, cluster.JobResume{ID: 1, Lease: 7})
	require.NotNil(t, refused, "no output from below the acknowledged offset")
	assert.Equal(t, cluster.RefuseUnknown, refused.Reason)
	assert.Contains(t, refused.Message, "acknowledged and dropped")
	_, refused = l2.openJob(t, cluster.TypeJobResume, cluster.JobResume{ID: 1, Lease: 8, Stdout: 4})
	require.NotNil(t, refused)
	assert.Equal(t, cluster.RefuseUnknown, refused.Reason)

	st2, refused := l2.openJob(t, cluster.TypeJobResume, cluster.JobResume{ID: 1, Lease: 7, Stdout: 4})
	require.Nil(t, refused)
	out, _ = jobMsg(t, st2)
	require.NotNil(t, out)
	assert.Equal(t, cluster.JobOutput{Stream: cluster.JobStdout, Offset: 4, Data: []byte("two\n")}, *out)
	require.NoError(t, proto.WriteMessage(st2, cluster.TypeJobCancel, cluster.JobCancel{Reason: "enough"}))
	_, end := jobMsg(t, st2)
	require.NotNil(t, end)
	assert.Equal(t, proto.VerdictCancelled, end.Verdict.Verdict)
	assert.Equal(t, "cancelled: enough", end.Verdict.Detail)
	assert.Equal(t, proto.Exit{Code: proto.ExitCancelled}, end.Exit)
	assert.Equal(t, "test-exec", end.Verdict.Executor)
	l2.waitTasks(t, 0)

	require.NoError(t, proto.WriteMessage(st2, cluster.TypeJobRelease, cluster.JobRelease{}))
	_, _, err := proto.ReadMessage(st2)
	assert.ErrorIs(t, err, io.EOF, "the executor closes the stream after the release")
	_, refused = l2.openJob(t, cluster.TypeJobResume, cluster.JobResume{ID: 1, Lease: 7, Stdout: 4})
	require.NotNil(t, refused, "released: forgotten")
	assert.Equal(t, cluster.RefuseUnknown, refused.Reason)
}

// TestJobsCountAsTasks: a running held job takes a task slot (offers and
// jobs are refused as full, Load says so), a JobRun again under its lease
// is the same job, a JobDrop frees the slot, and a language the executor
// lacks is refused.
func TestJobsCountAsTasks(t *testing.T) {
	m := newMaster(t, masterOptions{insecure: true})
	startExecutor(t, Config{Master: m.addr(), Insecure: true, MaxTasks: 1}, hooks{sessions: newFakeSessions()})
	l := m.link()
	st, refused := l.runJob(t, 1, 1, "sh", "echo started; sleep 600")
	require.Nil(t, refused)
	defer func() { _ = st.Close() }()
	l.waitTasks(t, 1)
	_, refused = l.offer(t, cluster.Offer{ID: 1})
	require.NotNil(t, refused)
	assert.Equal(t, cluster.RefuseFull, refused.Reason)
	_, refused = l.runJob(t, 2, 1, "sh", "true")
	require.NotNil(t, refused)
	assert.Equal(t, cluster.RefuseFull, refused.Reason)

	again, refused := l.runJob(t, 1, 1, "sh", "echo other")
	require.Nil(t, refused, "the same job under the same lease")
	out, _ := jobMsg(t, again)
	assert.Equal(t, "started\n", string(out.Data))
	_ = again.Close()

	drop, err := l.mux.OpenStream()
	require.NoError(t, err)
	require.NoError(t, proto.WriteMessage(drop, cluster.TypeJobDrop, cluster.JobDrop{ID: 1, Lease: 1}))
	l.waitTasks(t, 0)
	_, refused = l.runJob(t, 3, 1, "cobol", "x")
	require.NotNil(t, refused)
	assert.Equal(t, cluster.RefuseLang, refused.Reason)
	assert.Contains(t, refused.Message, "no language cobol here")
}

// TestShutdownKillsHeldJobs: at shutdown the executor leaves, then kills
// its held jobs: Run returns although a job would run for ten minutes.
func TestShutdownKillsHeldJobs(t *testing.T) {
	m := newMaster(t, masterOptions{insecure: true})
	ex := startExecutor(t, Config{Master: m.addr(), Insecure: true}, hooks{sessions: newFakeSessions()})
	l := m.link()
	st, refused := l.runJob(t, 1, 1, "sh", "echo up; sleep 600")
	require.Nil(t, refused)
	out, _ := jobMsg(t, st)
	require.NotNil(t, out)
	require.NoError(t, ex.stop(t))
	l.waitLeave(t)
}

// FuzzJobStream feeds the executor's side of a job stream arbitrary bytes
// (a job message, what follows it, and the master's messages after): it
// must neither panic nor hang. JobRun is refused (leaving) before anything
// runs; a job held under id 1, lease 1 can be resumed, acknowledged,
// cancelled and released.
func FuzzJobStream(f *testing.F) {
	msg := func(ty proto.Type, v any, more ...[]byte) []byte {
		var b bytesBuf
		_ = proto.WriteMessage(&b, ty, v)
		for _, m := range more {
			b = append(b, m...)
		}
		return b
	}
	f.Add(msg(cluster.TypeJobResume, cluster.JobResume{ID: 1, Lease: 1},
		msg(cluster.TypeJobAck, cluster.JobAck{Stdout: 3}), msg(cluster.TypeJobCancel, cluster.JobCancel{}), msg(cluster.TypeJobRelease, cluster.JobRelease{})))
	f.Add(msg(cluster.TypeJobResume, cluster.JobResume{ID: 1, Lease: 1, Stdout: 99}, []byte{0, 0, 0, 1, 60}))
	f.Add(msg(cluster.TypeJobRun, cluster.JobRun{ID: 2, Lease: 1, Lang: "sh", Size: 4}, []byte("true")))
	f.Add(msg(cluster.TypeJobRun, cluster.JobRun{ID: 2, Lease: 1, Lang: "sh", Size: -1}))
	f.Add(msg(cluster.TypeJobRun, cluster.JobRun{ID: 2, Lease: 1, Lang: "sh", Size: 1 << 40}))
	f.Add(msg(cluster.TypeJobDrop, cluster.JobDrop{ID: 1, Lease: 2}))
	f.Add([]byte{0, 0, 0, 3, 49, '{', '}'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 48})

	jobs := jobhost.New(jobhost.Config{Executor: "fuzz"})
	defer jobs.Close()
	e := &executor{
		cfg:     Config{Master: "fuzz", MaxTasks: 4, MaxCPU: 100},
		log:     slog.New(slog.DiscardHandler),
		cpu:     func() float64 { return 0 },
		changed: make(chan struct{}, 1),
		jobs:    jobs,
		leaving: true,
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := jobs.Resume(1, 1); err != nil {
			j, err := jobs.Run(cluster.JobRun{ID: 1, Lease: 1, Lang: "sh"}, []byte("echo fuzz"), nil)
			require.NoError(t, err)
			_, err = j.Follow(t.Context(), 0, 0, func(int, int64, []byte) error { return nil })
			require.NoError(t, err)
		}
		a, b := net.Pipe()
		mmux, err := proto.Server(a)
		require.NoError(t, err)
		emux, err := proto.Client(b)
		require.NoError(t, err)
		defer func() { _ = mmux.Close(); _ = emux.Close() }()
		l := &link{mux: emux}
		done := make(chan struct{})
		go func() {
			defer close(done)
			st, err := emux.AcceptStream()
			if err != nil {
				return
			}
			e.offered(l, st)
		}()
		st, err := mmux.OpenStream()
		require.NoError(t, err)
		go func() { _, _ = io.Copy(io.Discard, st) }()
		_, _ = st.Write(data)
		_ = st.Close() // the master's end: EOF after the bytes
		select {
		case <-done:
		case <-time.After(testTimeout):
			t.Fatal("the executor's side of a job stream hung")
		}
	})
}

// bytesBuf collects what is written to it.
type bytesBuf []byte

func (b *bytesBuf) Write(p []byte) (int, error) {
	*b = append(*b, p...)
	return len(p), nil
}
