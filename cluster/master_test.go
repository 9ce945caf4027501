package cluster_test

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"resh/cluster"
	"resh/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeExec is an executor played by the test over an in-memory link.
type fakeExec struct {
	name   string
	mux    *yamux.Session // the executor's end
	ctl    *yamux.Stream
	offers chan cluster.Offer
	// answer decides each offer: "" accepts, else the refusal's reason.
	answer func(cluster.Offer) string
	// serve, if set, runs an accepted offer's session.
	serve    func(*cluster.SessionMux)
	sessions cluster.Sessions
	// jobs, if set, takes the job streams (JobRun, JobResume, JobDrop).
	jobs func(st *yamux.Stream, ty proto.Type, body []byte)
}

// join makes a fake executor with these limits join m.
func join(t *testing.T, m *cluster.Master, name string, maxTasks int, answer func(cluster.Offer) string) *fakeExec {
	t.Helper()
	return joinWith(t, m, cluster.Join{Version: cluster.LinkVersion, Name: name, MaxTasks: maxTasks, MaxCPU: 100}, answer)
}

// joinLangs makes a fake executor that has these languages join m.
func joinLangs(t *testing.T, m *cluster.Master, name string, maxTasks int, langs []string) *fakeExec {
	t.Helper()
	return joinWith(t, m, cluster.Join{Version: cluster.LinkVersion, Name: name, MaxTasks: maxTasks, MaxCPU: 100, Languages: langs}, nil)
}

// joinWith makes a fake executor join m with j.
func joinWith(t *testing.T, m *cluster.Master, j cluster.Join, answer func(cluster.Offer) string) *fakeExec {
	t.Helper()
	return joinJobs(t, m, j, answer, nil)
}

// joinJobs makes a fake executor join m with j; jobs takes its job
// streams.
func joinJobs(t *testing.T, m *cluster.Master, j cluster.Join, answer func(cluster.Offer) string, jobs func(*yamux.Stream, proto.Type, []byte)) *fakeExec {
	t.Helper()
	name := j.Name
	a, b := net.Pipe()
	smux, err := proto.Server(a)
	require.NoError(t, err)
	emux, err := proto.Client(b)
	require.NoError(t, err)
	f := &fakeExec{name: name, mux: emux, offers: make(chan cluster.Offer, 64), answer: answer, jobs: jobs}
	served := make(chan struct{})
	go func() {
		defer close(served)
		st, err := smux.AcceptStream()
		if err != nil {
			return
		}
		var o proto.Open
		if proto.Expect(st, proto.TypeOpen, &o) != nil {
			return
		}
		m.ServeLink(cluster.Link{Mux: smux, Control: st, Addr: "pipe-" + name})
	}()
	t.Cleanup(func() {
		_ = emux.Close()
		_ = smux.Close()
		<-served
	})
	f.ctl, err = emux.OpenStream()
	require.NoError(t, err)
	require.NoError(t, proto.WriteMessage(f.ctl, proto.TypeOpen, proto.Open{Kind: cluster.KindExecutor}))
	require.NoError(t, proto.WriteMessage(f.ctl, cluster.TypeJoin, j))
	var w cluster.Welcome
	require.NoError(t, proto.Expect(f.ctl, cluster.TypeWelcome, &w))
	go f.takeOffers()
	return f
}

func (f *fakeExec) takeOffers() {
	for {
		st, err := f.mux.AcceptStream()
		if err != nil {
			return
		}
		ty, body, err := proto.ReadMessage(st)
		if err != nil {
			_ = st.Close()
			continue
		}
		if f.jobs != nil && (ty == cluster.TypeJobRun || ty == cluster.TypeJobResume || ty == cluster.TypeJobDrop) {
			go f.jobs(st, ty, body)
			continue
		}
		if ty == cluster.TypeAttach {
			var a cluster.Attach
			_ = proto.Decode(body, &a)
			_ = f.sessions.Attached(st, a)
			continue
		}
		var o cluster.Offer
		if ty != cluster.TypeOffer || proto.Decode(body, &o) != nil {
			_ = st.Close()
			continue
		}
		f.offers <- o
		reason := ""
		if f.answer != nil {
			reason = f.answer(o)
		}
		if reason != "" {
			_ = proto.WriteMessage(st, cluster.TypeRefuse, cluster.Refuse{Reason: reason})
			_ = st.Close()
			continue
		}
		mux := f.sessions.Accepted(f.mux, st, o)
		_ = proto.WriteMessage(st, cluster.TypeAccept, cluster.Accept{})
		if f.serve != nil {
			go f.serve(mux)
		}
	}
}

// load sends a Load report.
func (f *fakeExec) load(t *testing.T, tasks int, cpu float64) {
	t.Helper()
	require.NoError(t, proto.WriteMessage(f.ctl, cluster.TypeLoad, cluster.Load{Tasks: tasks, CPU: cpu}))
}

func newMaster(t *testing.T, cfg cluster.Config) *cluster.Master {
	t.Helper()
	m := cluster.NewMaster(cfg)
	t.Cleanup(m.Close)
	return m
}

// place places a session and fails the test on error.
func place(t *testing.T, m *cluster.Master, task cluster.Task) *cluster.Placement {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := m.Place(ctx, task, nil)
	require.NoError(t, err)
	return p
}

// waitState waits until m lists executor name in state.
func waitState(t *testing.T, m *cluster.Master, name, state string, tasks int) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, e := range m.Executors() {
			if e.Name == name && e.State == state && e.Tasks == tasks {
				return true
			}
		}
		return false
	}, 5*time.Second, 5*time.Millisecond, "executor %s never %s with %d tasks: %+v", name, state, tasks, m.Executors())
}

func TestPlacesOnTheExecutorWithMostRoom(t *testing.T) {
	m := newMaster(t, cluster.Config{})
	join(t, m, "small", 2, nil)
	join(t, m, "big", 4, nil)
	var got []string
	for range 6 {
		p := place(t, m, cluster.Task{Command: "true"})
		got = append(got, p.Executor())
		defer p.Done()
	}
	// big has 4 free, then 3, then ties with small at 2 (name order), ...
	assert.Equal(t, []string{"big", "big", "big", "small", "big", "small"}, got)
	waitState(t, m, "big", proto.StateFull, 4)
	waitState(t, m, "small", proto.StateFull, 2)
}

func TestLowerCPUBreaksTies(t *testing.T) {
	m := newMaster(t, cluster.Config{})
	a := join(t, m, "a", 2, nil)
	join(t, m, "b", 2, nil)
	a.load(t, 0, 80)
	require.Eventually(t, func() bool { return m.Executors()[0].CPU == 80 }, 5*time.Second, 5*time.Millisecond)
	p := place(t, m, cluster.Task{})
	defer p.Done()
	assert.Equal(t, "b", p.Executor())
}

func TestRefusedSessionGoesToTheNext(t *testing.T) {
	m := newMaster(t, cluster.Config{})
	busy := join(t, m, "a-busy", 8, func(cluster.Offer) string { return cluster.RefuseFull })
	join(t, m, "b-free", 2, nil)
	p := place(t, m, cluster.Task{Command: "x"})
	defer p.Done()
	assert.Equal(t, "b-free", p.Executor())
	o := <-busy.offers
	assert.Equal(t, "x", o.Command)
	// Until its next Load, the refusing executor is full and not offered
	// anything.
	waitState(t, m, "a-busy", proto.StateFull, 0)
	p2 := place(t, m, cluster.Task{})
	defer p2.Done()
	assert.Equal(t, "b-free", p2.Executor())
	assert.Empty(t, busy.offers)
}

func TestQueueIsFIFO(t *testing.T) {
	m := newMaster(t, cluster.Config{})
	join(t, m, "one", 1, nil)
	first := place(t, m, cluster.Task{})
	type res struct {
		name string
		p    *cluster.Placement
	}
	placed := make(chan res, 2)
	ahead := map[string]chan int{"x": make(chan int, 8), "y": make(chan int, 8)}
	for _, name := range []string{"x", "y"} {
		go func() {
			p, err := m.Place(context.Background(), cluster.Task{Command: name}, func(n int) { ahead[name] <- n })
			assert.NoError(t, err)
			placed <- res{name, p}
		}()
		// x is queued before y.
		require.Equal(t, map[string]int{"x": 0, "y": 1}[name], <-ahead[name])
	}
	first.Done()
	r := <-placed
	assert.Equal(t, "x", r.name)
	assert.Equal(t, 0, <-ahead["y"], "y moves up once x is placed")
	r.p.Done()
	r = <-placed
	assert.Equal(t, "y", r.name)
	r.p.Done()
}

func TestQueueTimeout(t *testing.T) {
	m := newMaster(t, cluster.Config{QueueTimeout: 50 * time.Millisecond})
	_, err := m.Place(context.Background(), cluster.Task{}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no executor took the session within 50ms: no executor is up")

	join(t, m, "one", 1, nil)
	p := place(t, m, cluster.Task{})
	defer p.Done()
	_, err = m.Place(context.Background(), cluster.Task{}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the only executor up is busy")
}

func TestOnNamesTheExecutor(t *testing.T) {
	m := newMaster(t, cluster.Config{})
	join(t, m, "a", 4, nil)
	join(t, m, "b", 1, nil)
	p := place(t, m, cluster.Task{On: "b"})
	defer p.Done()
	assert.Equal(t, "b", p.Executor())
	_, err := m.Place(context.Background(), cluster.Task{On: "nope"}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `no executor named "nope" (known: a, b)`)
}

func TestClientThatLeavesTheQueue(t *testing.T) {
	m := newMaster(t, cluster.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := m.Place(ctx, cluster.Task{}, func(int) { cancel() })
		done <- err
	}()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("Place did not give up with its context")
	}
}

func TestJoinRefusals(t *testing.T) {
	m := newMaster(t, cluster.Config{})
	m.AddInProcess("host", nil, "v")
	for _, tc := range []struct {
		join cluster.Join
		want string
	}{
		{cluster.Join{Version: 9, Name: "x", MaxTasks: 1, MaxCPU: 100}, "version mismatch"},
		{cluster.Join{Version: 1, Name: "bad name", MaxTasks: 1, MaxCPU: 100}, "bad executor name"},
		{cluster.Join{Version: 1, Name: "x", MaxTasks: 0, MaxCPU: 100}, "bad max_tasks"},
		{cluster.Join{Version: 1, Name: "x", MaxTasks: 1, MaxCPU: 0}, "bad max_cpu"},
		{cluster.Join{Version: 1, Name: "host", MaxTasks: 1, MaxCPU: 100}, "this master's own executor"},
	} {
		a, b := net.Pipe()
		smux, err := proto.Server(a)
		require.NoError(t, err)
		emux, err := proto.Client(b)
		require.NoError(t, err)
		done := make(chan struct{})
		go func() {
			defer close(done)
			st, err := smux.AcceptStream()
			if err == nil {
				m.ServeLink(cluster.Link{Mux: smux, Control: st})
			}
		}()
		ctl, err := emux.OpenStream()
		require.NoError(t, err)
		require.NoError(t, proto.WriteMessage(ctl, cluster.TypeJoin, tc.join))
		var w cluster.Welcome
		err = proto.Expect(ctl, cluster.TypeWelcome, &w)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
		_ = emux.Close()
		<-done
		_ = smux.Close()
	}
	assert.Len(t, m.Executors(), 1)
}

// TestLostLinkEndsRelayedSessions: a session relayed to an executor whose
// link ends gets Gone after what the executor sent, and the executor is
// forgotten.
func TestLostLinkEndsRelayedSessions(t *testing.T) {
	m := newMaster(t, cluster.Config{})
	f := join(t, m, "doomed", 1, nil)
	f.serve = func(nested *cluster.SessionMux) {
		defer nested.Close()
		var streams []*yamux.Stream
		for range 4 {
			s, err := nested.AcceptStream()
			if err != nil {
				return
			}
			var o proto.Open
			_ = proto.Expect(s, proto.TypeOpen, &o)
			streams = append(streams, s)
		}
		var h proto.Hello
		_ = proto.Expect(streams[0], proto.TypeHello, &h)
		_ = proto.WriteMessage(streams[0], proto.TypeStarted, proto.Started{PID: 42})
		_, _ = streams[2].Write([]byte("partial output"))
		<-nested.CloseChan()
	}
	p := place(t, m, cluster.Task{})
	cs, client := clientSession(t)
	relayed := make(chan struct{})
	go func() {
		defer close(relayed)
		p.Relay(cs)
		p.Done()
	}()
	var started proto.Started
	require.NoError(t, proto.Expect(client.control, proto.TypeStarted, &started))
	assert.Equal(t, 42, started.PID)
	buf := make([]byte, 14)
	_, err := client.stdout.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "partial output", string(buf))

	_ = f.mux.Close() // the link is lost
	var gone proto.Gone
	require.NoError(t, proto.Expect(client.control, proto.TypeGone, &gone))
	assert.Equal(t, "executor doomed lost", gone.Message)
	_ = client.mux.Close()
	select {
	case <-relayed:
	case <-time.After(5 * time.Second):
		t.Fatal("the relay did not end")
	}
	require.Eventually(t, func() bool { return len(m.Executors()) == 0 }, 5*time.Second, 5*time.Millisecond)
}

// clientEnd is the client's side of a ClientSession.
type clientEnd struct {
	mux                            *yamux.Session
	control, stdin, stdout, stderr *yamux.Stream
}

// clientSession makes a client's session as the master's front has it,
// and the client's end of it.
func clientSession(t *testing.T) (cluster.ClientSession, *clientEnd) {
	t.Helper()
	a, b := net.Pipe()
	smux, err := proto.Server(a)
	require.NoError(t, err)
	cmux, err := proto.Client(b)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cmux.Close(); _ = smux.Close() })
	c := &clientEnd{mux: cmux}
	var ss [4]*yamux.Stream
	for i, dst := range []**yamux.Stream{&c.control, &c.stdin, &c.stdout, &c.stderr} {
		*dst, err = cmux.OpenStream()
		require.NoError(t, err)
		_, err = (*dst).Write(nil)
		require.NoError(t, err)
		ss[i], err = smux.AcceptStream()
		require.NoError(t, err)
	}
	return cluster.ClientSession{
		Mux: smux, Control: ss[0], Stdin: ss[1], Stdout: ss[2], Stderr: ss[3],
		Hello: proto.Hello{Version: proto.Version, Command: "x"},
		Log:   slogDiscard(),
		Send:  func(ty proto.Type, body []byte) error { return proto.WriteRaw(ss[0], ty, body) },
	}, c
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestStartingUntilJoined: a local executor the master started shows as
// starting, is offered nothing, and its Join replaces the placeholder.
func TestStartingUntilJoined(t *testing.T) {
	m := newMaster(t, cluster.Config{QueueTimeout: 50 * time.Millisecond})
	m.Starting("local-1", "local")
	waitState(t, m, "local-1", proto.StateStarting, 0)
	_, err := m.Place(context.Background(), cluster.Task{}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no executor is up")
	join(t, m, "local-1", 2, nil)
	waitState(t, m, "local-1", proto.StateUp, 0)
	p := place(t, m, cluster.Task{})
	defer p.Done()
	assert.Equal(t, "local-1", p.Executor())
	m.Starting("local-1", "local") // a restart while joined changes nothing
	waitState(t, m, "local-1", proto.StateUp, 1)
}

// TestPlacedWhereTheLanguageIs: a program goes only to an executor that
// has its language, and one that none has fails at once.
func TestPlacedWhereTheLanguageIs(t *testing.T) {
	m := newMaster(t, cluster.Config{})
	m.AddInProcess("shonly", []string{"sh"}, "v")
	joinLangs(t, m, "withc", 1, []string{"c", "sh"})
	p := place(t, m, cluster.Task{Lang: "c"})
	assert.Equal(t, "withc", p.Executor())
	p.Done()
	p = place(t, m, cluster.Task{Lang: "sh"})
	assert.Equal(t, "shonly", p.Executor(), "most room: the in-process one has no limit")
	p.Done()
	_, err := m.Place(context.Background(), cluster.Task{Lang: "java"}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no executor has the language java (the executors have: c, sh)")
	_, err = m.Place(context.Background(), cluster.Task{Lang: "c", On: "shonly"}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "executor shonly has no c (it has: sh)")
}
