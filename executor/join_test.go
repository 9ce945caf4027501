package executor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/cluster"
	"resh/internal/version"
)

// TestJoinMessage checks what an executor says when it joins, and that it
// leaves when its context ends.
func TestJoinMessage(t *testing.T) {
	m := newMaster(t, masterOptions{insecure: true})
	ex := startExecutor(t, Config{Master: m.addr(), Name: "node-1", MaxTasks: 3, MaxCPU: 75, Insecure: true},
		hooks{sessions: newFakeSessions(), languages: func() []string { return []string{"c", "python"} }, cpu: func() float64 { return 12.5 }})
	l := m.link()
	assert.Equal(t, cluster.Join{
		Version:   cluster.LinkVersion,
		Name:      "node-1",
		MaxTasks:  3,
		MaxCPU:    75,
		Languages: []string{"c", "python"},
		Software:  version.Short(),
		Tasks:     0,
		CPU:       12.5,
	}, l.join)
	ex.logs.wait(t, "joined the master", 1)

	require.NoError(t, ex.stop(t))
	assert.Equal(t, "shutting down", l.waitLeave(t).Reason)
}

// TestJoinRefusedByMaster: a master that answers Join with Error (a name
// taken) is logged and tried again.
func TestJoinRefusedByMaster(t *testing.T) {
	m := newMaster(t, masterOptions{insecure: true})
	tries := make(chan struct{}, 16)
	m.answer = func(j cluster.Join) string {
		tries <- struct{}{}
		if len(tries) < 3 {
			return "an executor named " + j.Name + " is already joined from 10.0.0.1:5000"
		}
		return ""
	}
	ex := startExecutor(t, Config{Master: m.addr(), Insecure: true}, hooks{sessions: newFakeSessions()})
	line := ex.logs.wait(t, "the master refused the join: an executor named test-exec is already joined", 2)
	assert.Contains(t, line, "master="+m.addr())
	m.link()
	ex.logs.wait(t, "joined the master", 1)
}

// TestStopWhileJoining: an executor stopped while the master has its Join
// but has not answered yet closes its link, so that a master that takes it
// in sees the link end at once rather than waiting the executor timeout
// for it to come back.
func TestStopWhileJoining(t *testing.T) {
	m := newMaster(t, masterOptions{insecure: true})
	joined, release := make(chan struct{}), make(chan struct{})
	m.ended = make(chan struct{}, 1)
	m.answer = func(cluster.Join) string {
		close(joined)
		<-release
		return ""
	}
	ex := startExecutor(t, Config{Master: m.addr(), Insecure: true, Timeout: 10 * time.Minute}, hooks{sessions: newFakeSessions()})
	select {
	case <-joined:
	case <-time.After(testTimeout):
		t.Fatalf("no Join within %v", testTimeout)
	}
	require.NoError(t, ex.stop(t))
	close(release) // Welcome is written, or not, on a link that is ending
	select {
	case <-m.ended:
	case <-time.After(testTimeout / 2):
		t.Fatalf("the master still had the link %v after the executor stopped", testTimeout/2)
	}
}
