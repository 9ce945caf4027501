package cat

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"resh/access"
	"resh/internal/streamtest"
	"resh/proto"
)

func TestClientServeReadFile(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	cwd := t.TempDir()
	data := bytes.Repeat([]byte("0123456789abcdef"), 100000) // 1.6 MB, more than a window
	require.NoError(t, os.WriteFile(filepath.Join(cwd, "data.bin"), data, 0o644))
	dirs, err := access.New(cwd, nil)
	require.NoError(t, err)
	defer dirs.Close()
	client, tool := streamtest.Pair(t)
	m := &meter{}
	done := make(chan error, 1)
	go func() {
		done <- ServeRead(t.Context(), client, proto.TransferOpen{Op: proto.OpRead, Path: "data.bin", Tool: "lcat"}, dirs, m)
	}()
	var reply proto.TransferReply
	require.NoError(t, proto.Expect(tool, proto.TypeTransferReply, &reply))
	assert.Equal(t, proto.TransferReply{OK: true, Size: int64(len(data))}, reply)
	got, err := io.ReadAll(tool)
	require.NoError(t, err)
	require.NoError(t, <-done)
	assert.True(t, bytes.Equal(got, data), "received %d bytes, want the file's %d", len(got), len(data))
	assert.Equal(t, meter{size: int64(len(data)), n: int64(len(data))}, *m, "opened with the size, ended at it")
	tool.Close()
}

func TestClientServeReadRefused(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	dirs, err := access.New(t.TempDir(), nil)
	require.NoError(t, err)
	defer dirs.Close()
	for _, c := range []struct{ path, want string }{
		{"/etc/passwd", "permission denied: /etc/passwd is outside the directories resh allows (add one with -allow)"},
		{"../x", "permission denied: ../x is outside the directories resh allows (add one with -allow)"},
		{"missing.csv", "no such file: missing.csv"},
		{".", ". is a directory"},
		{".hidden", "refused: hidden file .hidden (name it with -allow to permit)"},
		{"/dev/zero", "permission denied: /dev/zero is outside the directories resh allows (add one with -allow)"},
	} {
		client, tool := streamtest.Pair(t)
		done := make(chan error, 1)
		go func() {
			done <- ServeRead(t.Context(), client, proto.TransferOpen{Op: proto.OpRead, Path: c.path}, dirs, nil)
		}()
		var reply proto.TransferReply
		require.NoError(t, proto.Expect(tool, proto.TypeTransferReply, &reply))
		assert.Equal(t, proto.TransferReply{Error: c.want}, reply, c.path)
		rest, err := io.ReadAll(tool)
		require.NoError(t, err)
		assert.Empty(t, rest, "%s: after the refusal, EOF", c.path)
		err = <-done
		require.Error(t, err, c.path)
		assert.Contains(t, err.Error(), c.want)
		tool.Close()
	}
}

// meter records what ServeRead reports.
type meter struct{ size, n int64 }

func (m *meter) Opened(size int64) { m.size = size }
func (m *meter) Update(n int64)    { m.n = n }

// When reshd ends its side of the stream (lcat's reader is gone), the
// client stops reading the file at once, though reshd still reads what
// comes: a 64 MiB file, or /dev/zero, stops after a few windows.
func TestClientServeReadStopped(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	cwd := t.TempDir()
	const size = 64 << 20
	require.NoError(t, os.WriteFile(filepath.Join(cwd, "big"), make([]byte, size), 0o644))
	dirs, err := access.New(cwd, []string{"/dev/zero"})
	require.NoError(t, err)
	defer dirs.Close()
	for _, path := range []string{"big", "/dev/zero"} {
		client, tool := streamtest.Pair(t)
		m := &meter{}
		done := make(chan error, 1)
		go func() {
			done <- ServeRead(t.Context(), client, proto.TransferOpen{Op: proto.OpRead, Path: path}, dirs, m)
		}()
		var reply proto.TransferReply
		require.NoError(t, proto.Expect(tool, proto.TypeTransferReply, &reply))
		require.True(t, reply.OK, "%s: reply %+v", path, reply)
		_, err := io.ReadFull(tool, make([]byte, 1<<20))
		require.NoError(t, err)
		tool.Close() // reshd: lcat's reader is gone
		drained := make(chan int64, 1)
		go func() { n, _ := io.Copy(io.Discard, tool); drained <- n }()
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the client still sends after reshd's end", path)
		}
		var se *StoppedError
		require.ErrorAs(t, err, &se, path)
		assert.Equal(t, path, se.Path)
		n := <-drained
		assert.Equal(t, m.n, se.Sent, "%s: the meter saw every byte sent", path)
		assert.Equal(t, 1<<20+n, se.Sent, "%s: reshd read every byte sent", path)
		assert.LessOrEqual(t, se.Sent, int64(8<<20), "%s: sent well below %d", path, size)
	}
}
