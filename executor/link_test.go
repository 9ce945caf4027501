package executor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/cluster"
	"resh/server"
)

// TestRejoinAfterMasterRestart: the master dies with a session running
// and comes back on the same port; the restarted master no longer knows
// the link, so the executor ends the session, logs the loss and joins
// again by itself.
func TestRejoinAfterMasterRestart(t *testing.T) {
	m := newMaster(t, masterOptions{insecure: true})
	fs := newFakeSessions()
	ex := startExecutor(t, Config{Master: m.addr(), Insecure: true, Timeout: 10 * time.Second}, hooks{sessions: fs})
	l := m.link()
	_, refused := l.offer(t, cluster.Offer{ID: 1})
	require.Nil(t, refused)
	<-fs.served

	m.restart()
	fs.waitEnded(t) // the lost link ended the session
	l2 := m.link()
	assert.Equal(t, "test-exec", l2.join.Name)
	line := ex.logs.wait(t, "lost the link to the master", 1)
	assert.Contains(t, line, "master="+m.addr())
	assert.Contains(t, line, "err=")
	ex.logs.wait(t, "joined the master again", 1)

	st, refused := l2.offer(t, cluster.Offer{ID: 2})
	require.Nil(t, refused, "the new link takes work")
	_ = st.Close()
}

// TestRejoinAfterMasterDown: the master is gone (its port refuses) for
// longer than the refused timeout, then comes back: the executor keeps
// trying, with backoff, and joins it.
func TestRejoinAfterMasterDown(t *testing.T) {
	m := newMaster(t, masterOptions{insecure: true})
	ex := startExecutor(t, Config{Master: m.addr(), Insecure: true, Timeout: 500 * time.Millisecond}, hooks{sessions: newFakeSessions()})
	m.link()
	ex.logs.wait(t, "joined the master", 1)
	addr := m.addr()
	m.stop()
	ex.logs.wait(t, "lost the link to the master", 1)
	ex.logs.wait(t, "cannot join the master", 2)
	m.listen(addr)
	l := m.link()
	ex.logs.wait(t, "joined the master again", 1)
	require.NoError(t, ex.stop(t))
	l.waitLeave(t)
}

// TestLinkClosedByMaster: a master that closes the link (it replaced it,
// or shut down) is joined again.
func TestLinkClosedByMaster(t *testing.T) {
	m := newMaster(t, masterOptions{insecure: true})
	ex := startExecutor(t, Config{Master: m.addr(), Insecure: true}, hooks{sessions: newFakeSessions()})
	l := m.link()
	ex.logs.wait(t, "joined the master", 1)
	require.NoError(t, l.mux.Close())
	_ = l.conn.Close() // closed by yamux already, maybe
	m.link()
	ex.logs.wait(t, "joined the master again", 1)
}

// TestTasksSurviveAJoin: a session still ending when the executor joins
// again is reported in Join.Tasks.
func TestTasksSurviveAJoin(t *testing.T) {
	m := newMaster(t, masterOptions{insecure: true})
	block := &stuckSessions{fakeSessions: newFakeSessions(), release: make(chan struct{})}
	ex := startExecutor(t, Config{Master: m.addr(), Insecure: true}, hooks{sessions: block})
	l := m.link()
	_, refused := l.offer(t, cluster.Offer{ID: 1})
	require.Nil(t, refused)
	<-block.served
	require.NoError(t, l.mux.Close())
	_ = l.conn.Close() // closed by yamux already, maybe
	l2 := m.link()
	assert.Equal(t, 1, l2.join.Tasks, "the session from the lost link still runs")
	close(block.release)
	l2.waitTasks(t, 0)
	require.NoError(t, ex.stop(t))
}

// stuckSessions' sessions end only once release is closed, whatever
// happens to their stream (a command slow to die).
type stuckSessions struct {
	*fakeSessions
	release chan struct{}
}

func (s *stuckSessions) ServeMux(mux server.Mux, remote string) {
	s.served <- remote
	<-s.release
	_ = mux.Close()
}
