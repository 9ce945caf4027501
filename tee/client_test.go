package tee

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"resh/access"
	"resh/internal/streamtest"
	"resh/proto"
)

// transfer runs one ltee transfer of data and returns the reply and result.
func transfer(t *testing.T, dirs *access.Dirs, op, path, data string) (proto.TransferReply, proto.TransferResult, error) {
	t.Helper()
	client, tool := streamtest.Pair(t)
	m := &meter{}
	done := make(chan error, 1)
	go func() {
		done <- ServeWrite(t.Context(), client, proto.TransferOpen{Op: op, Path: path, Tool: "ltee"}, dirs, m)
	}()
	var reply proto.TransferReply
	var res proto.TransferResult
	require.NoError(t, proto.Expect(tool, proto.TypeTransferReply, &reply))
	if reply.OK {
		_, err := io.Copy(tool, strings.NewReader(data))
		require.NoError(t, err)
		tool.Close()
		require.NoError(t, proto.Expect(tool, proto.TypeTransferResult, &res))
	}
	rest, err := io.ReadAll(tool)
	require.NoError(t, err)
	require.Empty(t, rest, "after the transfer, EOF")
	tool.Close()
	err = <-done
	if res.OK {
		require.Equal(t, int64(len(data)), m.n, "where the progress ended")
	}
	return reply, res, err
}

func TestClientServeWriteAppend(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	cwd := t.TempDir()
	dirs, err := access.New(cwd, nil)
	require.NoError(t, err)
	defer dirs.Close()
	big := strings.Repeat("line of text\n", 50000) // 650 KB, more than a window
	steps := []struct{ op, data, want string }{
		{proto.OpWrite, big, big},
		{proto.OpWrite, "first\n", "first\n"},
		{proto.OpAppend, "second\n", "first\nsecond\n"},
	}
	for _, s := range steps {
		reply, res, err := transfer(t, dirs, s.op, "out.txt", s.data)
		require.NoError(t, err)
		require.True(t, reply.OK, "%s: reply %+v", s.op, reply)
		require.Equal(t, proto.TransferResult{OK: true, Bytes: int64(len(s.data))}, res, s.op)
		got, err := os.ReadFile(filepath.Join(cwd, "out.txt"))
		require.NoError(t, err)
		require.Equal(t, s.want, string(got), "after %s", s.op)
	}
}

func TestClientServeWriteRefused(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	parent := t.TempDir()
	cwd := filepath.Join(parent, "cwd")
	require.NoError(t, os.Mkdir(cwd, 0o755))
	dirs, err := access.New(cwd, nil)
	require.NoError(t, err)
	defer dirs.Close()
	outside := filepath.Join(parent, "x")
	for _, c := range []struct{ path, want string }{
		{outside, "permission denied: " + outside + " is outside the directories resh allows (add one with -allow)"},
		{"../x", "permission denied: ../x is outside the directories resh allows (add one with -allow)"},
		{"nodir/x", "no such file: nodir/x"},
	} {
		reply, _, err := transfer(t, dirs, proto.OpAppend, c.path, "data")
		assert.Equal(t, proto.TransferReply{Error: c.want}, reply, c.path)
		assert.Error(t, err, c.path)
	}
	assert.NoFileExists(t, outside, "a refused ltee created it")
}

func TestClientServeWriteDiskError(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	dirs, err := access.New("/dev", []string{"/dev/full"})
	require.NoError(t, err)
	defer dirs.Close()
	reply, res, err := transfer(t, dirs, proto.OpAppend, "full", strings.Repeat("x", 200000))
	assert.True(t, reply.OK)
	assert.False(t, res.OK)
	assert.Contains(t, res.Error, "no space left", "the result has the write error")
	assert.Error(t, err)
}

// meter records what ServeWrite reports.
type meter struct{ size, n int64 }

func (m *meter) Opened(size int64) { m.size = size }
func (m *meter) Update(n int64)    { m.n = n }
