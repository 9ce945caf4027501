package client

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/proto"
)

func TestReadExit(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, proto.WriteMessage(&b, proto.TypeResize, proto.Resize{Rows: 1, Cols: 1}))
	require.NoError(t, proto.WriteMessage(&b, proto.TypeExit, proto.Exit{Code: 3}))
	end := readExit(&b)
	require.NoError(t, end.err)
	assert.Equal(t, 3, exitStatus(end.exit))

	end = readExit(bytes.NewReader(nil))
	assert.ErrorIs(t, end.err, io.EOF)

	var bad bytes.Buffer
	require.NoError(t, proto.WriteMessage(&bad, proto.TypeExit, "not an object"))
	end = readExit(&bad)
	assert.ErrorContains(t, end.err, "protocol error")
}

func TestReadExitGone(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, proto.WriteMessage(&b, proto.TypeQueued, proto.Queued{Ahead: 1}))
	require.NoError(t, proto.WriteMessage(&b, proto.TypeGone, proto.Gone{Message: "executor local-1 lost"}))
	end := readExit(&b)
	require.NoError(t, end.err)
	require.NotNil(t, end.gone)
	assert.EqualError(t, goneError(end.gone), "executor local-1 lost")
	assert.EqualError(t, goneError(&proto.Gone{}), "the executor running the command was lost")
}

// TestRunGone: Gone after Started ends resh with 255 and its message, after
// the output that came before it.
func TestRunGone(t *testing.T) {
	out := strings.Repeat("o", 300<<10) + "\nlast line\n" // more than a stream window
	port := startFake(t, func(s *fakeSession) {
		s.send(proto.TypeStarted, proto.Started{})
		s.write(s.stdout, out)
		s.write(s.stderr, "err before\n")
		s.send(proto.TypeGone, proto.Gone{Message: "executor local-1 lost"})
		s.sess.Close() // the master ends the session
	})
	code, stdout, stderr := runClient(t, port, Options{Command: "x"}, "", "", nil)
	assert.Equal(t, 255, code)
	assert.Equal(t, len(out), len(stdout))
	assert.Equal(t, out, stdout)
	assert.Equal(t, "err before\nresh: executor local-1 lost\n", stderr)
}
