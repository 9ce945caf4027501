package server

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A job cut by the broker's close has its connection closed before its
// context ends: whatever the end of the context wakes (a copy that then
// sends TransferDone) finds the tool's connection closed, and the tool
// sees the session's end, not "context canceled" (TestPassBrokerClose).
func TestJobStopClosesFirst(t *testing.T) {
	c, tool := unixPair(t)
	ctx, cancel := context.WithCancel(t.Context())
	closedFirst := false
	j := &job{c: c, ctx: ctx, cancel: func() {
		closedFirst = c.SetDeadline(time.Time{}) != nil // fails once closed
		cancel()
	}}
	j.stop()
	assert.True(t, closedFirst, "the context ended before the connection was closed")
	require.Error(t, ctx.Err())
	_ = tool.SetReadDeadline(time.Now().Add(testTimeout))
	n, err := tool.Read(make([]byte, 1))
	assert.Equal(t, 0, n)
	assert.Error(t, err, "the tool sees the end of its connection")
}

// unixPair is both ends of a Unix socket connection, closed with the test.
func unixPair(t *testing.T) (server, client *net.UnixConn) {
	t.Helper()
	addr := &net.UnixAddr{Net: "unix", Name: filepath.Join(t.TempDir(), "s")}
	ln, err := net.ListenUnix("unix", addr)
	require.NoError(t, err)
	defer ln.Close()
	client, err = net.DialUnix("unix", nil, addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	server, err = ln.AcceptUnix()
	require.NoError(t, err)
	t.Cleanup(func() { _ = server.Close() })
	return server, client
}
