package executor

import (
	"crypto/ed25519"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/cluster"
	"resh/proto"
	"resh/server"
)

// nested is the master's end of a session relayed to an executor: a
// yamux client on the offer's stream, with the four streams of a resh
// session (proto/spec.md §2).
type nested struct {
	anchor                         *yamux.Stream // closing it ends the session
	control, stdin, stdout, stderr *yamux.Stream
}

// startNested attaches the session's streams to the accepted session id
// (anchored on anchor) and sends hello.
func startNested(t *testing.T, l *mlink, anchor *yamux.Stream, id uint64, hello proto.Hello) *nested {
	t.Helper()
	t.Cleanup(func() { _ = anchor.Close() })
	n := &nested{anchor: anchor}
	for _, k := range []struct {
		kind string
		s    **yamux.Stream
	}{{proto.KindControl, &n.control}, {proto.KindStdin, &n.stdin}, {proto.KindStdout, &n.stdout}, {proto.KindStderr, &n.stderr}} {
		s := l.attach(t, id)
		require.NoError(t, proto.WriteMessage(s, proto.TypeOpen, proto.Open{Kind: k.kind}))
		*k.s = s
	}
	hello.Version = proto.Version
	require.NoError(t, proto.WriteMessage(n.control, proto.TypeHello, hello))
	_ = n.control.SetReadDeadline(time.Now().Add(testTimeout))
	var s proto.Started
	require.NoError(t, proto.Expect(n.control, proto.TypeStarted, &s))
	return n
}

// exit waits for the command's Exit.
func (n *nested) exit(t *testing.T) proto.Exit {
	t.Helper()
	var e proto.Exit
	_ = n.control.SetReadDeadline(time.Now().Add(testTimeout))
	require.NoError(t, proto.Expect(n.control, proto.TypeExit, &e))
	return e
}

// TestSessionRuns: an accepted offer runs a real session (package server)
// on the link's streams attached to it: the command's output and exit status come back,
// and the task is counted while it runs.
func TestSessionRuns(t *testing.T) {
	home, key := executorHome(t)
	m := newMaster(t, masterOptions{executors: []ed25519.PrivateKey{key}})
	ex := startExecutor(t, Config{Master: m.addr(), Home: home, MaxTasks: 2, Server: &server.Config{}}, hooks{})
	l := m.link()
	st, refused := l.offer(t, cluster.Offer{ID: 7, Client: "192.0.2.1:4000", Command: "echo hello; echo oops >&2; exit 3"})
	require.Nil(t, refused)
	n := startNested(t, l, st, 7, proto.Hello{Command: "echo hello; echo oops >&2; exit 3"})
	_ = n.stdin.Close()
	_ = n.stdout.SetReadDeadline(time.Now().Add(testTimeout))
	out, err := io.ReadAll(n.stdout)
	require.NoError(t, err)
	assert.Equal(t, "hello\n", string(out))
	_ = n.stderr.SetReadDeadline(time.Now().Add(testTimeout))
	errOut, err := io.ReadAll(n.stderr)
	require.NoError(t, err)
	assert.Equal(t, "oops\n", string(errOut))
	assert.Equal(t, proto.Exit{Code: 3}, n.exit(t))
	l.waitTasks(t, 1)
	_ = n.anchor.Close()
	l.waitTasks(t, 0)
	require.NoError(t, ex.stop(t))
	l.waitLeave(t)
}

// TestShutdownHangsUp: when the executor's context ends, its running
// commands are hung up and their clients get Exit, before Leave.
func TestShutdownHangsUp(t *testing.T) {
	m := newMaster(t, masterOptions{insecure: true})
	ex := startExecutor(t, Config{Master: m.addr(), Insecure: true, Server: &server.Config{KillGrace: time.Second}}, hooks{})
	l := m.link()
	st, refused := l.offer(t, cluster.Offer{ID: 1})
	require.Nil(t, refused)
	n := startNested(t, l, st, 1, proto.Hello{Command: "sleep 60"})
	l.waitTasks(t, 1)

	ex.cancel()
	e := n.exit(t)
	assert.Equal(t, 1, e.Signal, "SIGHUP: %+v", e)
	l.waitLeave(t)
	require.NoError(t, ex.result(t))
}

// TestLostLinkEndsSessions: when the link is lost for good, the sessions
// on it end (their commands hung up) and the executor joins again.
func TestLostLinkEndsSessions(t *testing.T) {
	m := newMaster(t, masterOptions{insecure: true})
	ex := startExecutor(t, Config{Master: m.addr(), Insecure: true, Server: &server.Config{KillGrace: time.Second}}, hooks{})
	l := m.link()
	st, refused := l.offer(t, cluster.Offer{ID: 1})
	require.Nil(t, refused)
	startNested(t, l, st, 1, proto.Hello{Command: "sleep 60"})
	l.waitTasks(t, 1)

	m.restart()
	l2 := m.link()
	if l2.join.Tasks == 1 {
		l2.waitTasks(t, 0) // the command was hung up
	}
	ex.logs.wait(t, "lost the link to the master", 1)
	require.NoError(t, ex.stop(t))
}
