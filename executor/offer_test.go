package executor

import (
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/cluster"
)

// TestOfferFull: with MaxTasks 1, a second offer while the first session
// runs is refused "full"; once it ended, a third is accepted. Load
// follows each change at once, and the session's bytes go through.
func TestOfferFull(t *testing.T) {
	m := newMaster(t, masterOptions{insecure: true})
	fs := newFakeSessions()
	startExecutor(t, Config{Master: m.addr(), MaxTasks: 1, Insecure: true}, hooks{sessions: fs, cpu: func() float64 { return 0 }})
	l := m.link()

	st, refused := l.offer(t, cluster.Offer{ID: 1, Client: "10.1.1.1:999", Command: "true"})
	require.Nil(t, refused)
	assert.Equal(t, "10.1.1.1:999 via master "+m.addr(), <-fs.served)
	l.waitTasks(t, 1)
	further := l.attach(t, 1)
	_, err := further.Write([]byte("ping"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	_ = further.SetReadDeadline(time.Now().Add(testTimeout))
	_, err = io.ReadFull(further, buf)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(buf), "the session's streams are attached to it")

	_, refused = l.offer(t, cluster.Offer{ID: 2})
	require.NotNil(t, refused)
	assert.Equal(t, cluster.RefuseFull, refused.Reason)
	assert.Equal(t, "1 of 1 tasks running", refused.Message)

	require.NoError(t, st.Close()) // the session ends
	fs.waitEnded(t)
	l.waitTasks(t, 0)
	st, refused = l.offer(t, cluster.Offer{ID: 3})
	require.Nil(t, refused)
	l.waitTasks(t, 1)
	_ = st.Close()
	l.waitTasks(t, 0)
}

// TestOfferCPU: above its CPU limit an executor refuses "cpu"; below, it
// accepts; a CPU change of a point or more is reported in a Load.
func TestOfferCPU(t *testing.T) {
	m := newMaster(t, masterOptions{insecure: true})
	var cpu atomic.Value
	cpu.Store(80.0)
	startExecutor(t, Config{Master: m.addr(), MaxTasks: 4, MaxCPU: 50, Insecure: true},
		hooks{sessions: newFakeSessions(), cpu: func() float64 { return cpu.Load().(float64) }, loadInterval: 10 * time.Millisecond})
	l := m.link()
	assert.Equal(t, 80.0, l.join.CPU)

	_, refused := l.offer(t, cluster.Offer{ID: 1})
	require.NotNil(t, refused)
	assert.Equal(t, cluster.RefuseCPU, refused.Reason)
	assert.Equal(t, "CPU at 80.0%, above the limit of 50%", refused.Message)

	cpu.Store(20.0)
	l.next(t, "Load with the new CPU", func(m linkMsg) bool { return m.t == cluster.TypeLoad && m.load.CPU == 20 })
	st, refused := l.offer(t, cluster.Offer{ID: 2})
	require.Nil(t, refused)
	_ = st.Close()
}

// TestOfferNoCPULimit: with MaxCPU 100 the CPU never refuses.
func TestOfferNoCPULimit(t *testing.T) {
	m := newMaster(t, masterOptions{insecure: true})
	startExecutor(t, Config{Master: m.addr(), MaxTasks: 1, Insecure: true},
		hooks{sessions: newFakeSessions(), cpu: func() float64 { return 100 }})
	st, refused := m.link().offer(t, cluster.Offer{ID: 1})
	require.Nil(t, refused)
	_ = st.Close()
}

// TestOfferLeaving: offers made while the executor hangs up its sessions
// are refused "leaving"; then it sends Leave.
func TestOfferLeaving(t *testing.T) {
	m := newMaster(t, masterOptions{insecure: true})
	block := &blockingSessions{fakeSessions: newFakeSessions(), release: make(chan struct{}), shut: make(chan struct{})}
	ex := startExecutor(t, Config{Master: m.addr(), MaxTasks: 2, Insecure: true}, hooks{sessions: block})
	l := m.link()
	st, refused := l.offer(t, cluster.Offer{ID: 1})
	require.Nil(t, refused)
	defer func() { _ = st.Close() }()
	l.waitTasks(t, 1)

	ex.cancel()
	<-block.shut // Shutdown was called, and waits
	_, refused = l.offer(t, cluster.Offer{ID: 2})
	require.NotNil(t, refused)
	assert.Equal(t, cluster.RefuseLeaving, refused.Reason)
	close(block.release)
	l.waitLeave(t)
	require.NoError(t, ex.result(t))
}

// blockingSessions' Shutdown waits for release before hanging up.
type blockingSessions struct {
	*fakeSessions
	release chan struct{}
	shut    chan struct{}
}

func (b *blockingSessions) Shutdown(ctx context.Context) error {
	close(b.shut)
	<-b.release
	return b.fakeSessions.Shutdown(ctx)
}

// TestLeaveCutsStuckSessions: sessions that do not end when hung up are
// cut by closing the link, and Run returns.
func TestLeaveCutsStuckSessions(t *testing.T) {
	m := newMaster(t, masterOptions{insecure: true})
	deaf := &deafSessions{fakeSessions: newFakeSessions()}
	ex := startExecutor(t, Config{Master: m.addr(), Insecure: true}, hooks{sessions: deaf, grace: 10 * time.Millisecond})
	l := m.link()
	st, refused := l.offer(t, cluster.Offer{ID: 1})
	require.Nil(t, refused)
	defer func() { _ = st.Close() }()
	<-deaf.served
	require.NoError(t, ex.stop(t))
	ex.logs.wait(t, "sessions still running at shutdown: closing the link under them", 1)
	deaf.waitEnded(t)
}

// deafSessions' Shutdown hangs up nothing: the sessions end only when
// their streams do.
type deafSessions struct{ *fakeSessions }

func (deafSessions) Shutdown(context.Context) error { return nil }
