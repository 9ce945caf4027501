package cat

import (
	"bytes"
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"resh/internal/streamtest"
	"resh/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeSocket is a RESH_SOCKET whose far end is a fake client serving read
// transfers from files, refusing the names in refused.
type fakeSocket struct {
	path    string
	files   map[string]string
	refused map[string]string
	short   map[string]int64 // announce this size but send the file as is

	mu    sync.Mutex
	opens []proto.TransferOpen
}

func newFakeSocket(t *testing.T) *fakeSocket {
	t.Helper()
	f := &fakeSocket{path: filepath.Join(t.TempDir(), "s"), files: map[string]string{}, refused: map[string]string{}, short: map[string]int64{}}
	streamtest.ServeUnix(t, f.path, f.serve)
	return f
}

func (f *fakeSocket) serve(c net.Conn) {
	var open proto.TransferOpen
	if err := proto.Expect(c, proto.TypeTransferOpen, &open); err != nil {
		return
	}
	f.mu.Lock()
	f.opens = append(f.opens, open)
	f.mu.Unlock()
	if msg, ok := f.refused[open.Path]; ok {
		_ = proto.WriteMessage(c, proto.TypeTransferReply, proto.TransferReply{Error: msg})
		return
	}
	data := f.files[open.Path]
	size := int64(len(data))
	if s, ok := f.short[open.Path]; ok {
		size = s
	}
	_ = proto.WriteMessage(c, proto.TypeTransferReply, proto.TransferReply{OK: true, Size: size})
	_, _ = io.WriteString(c, data)
}

func run(t *testing.T, socket string, files []string, stdin string) (stdout, stderr string, status int) {
	t.Helper()
	var out, errb bytes.Buffer
	status = Remote(context.Background(), socket, files, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), status
}

func TestRemoteTwoFilesInOrder(t *testing.T) {
	f := newFakeSocket(t)
	f.files["a.txt"] = "first\n"
	f.files["dir/b.txt"] = strings.Repeat("second ", 50000) + "\n"
	out, errs, status := run(t, f.path, []string{"a.txt", "dir/b.txt"}, "")
	assert.Equal(t, f.files["a.txt"]+f.files["dir/b.txt"], out)
	assert.Empty(t, errs)
	assert.Equal(t, 0, status)
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, o := range f.opens {
		assert.Equal(t, proto.OpRead, o.Op, "open %d", i)
		assert.Equal(t, "lcat", o.Tool, "open %d", i)
	}
}

func TestRemoteRefusedFileContinues(t *testing.T) {
	f := newFakeSocket(t)
	f.refused["/etc/passwd"] = "permission denied: /etc/passwd is outside the allowed directories"
	f.refused["gone"] = "no such file"
	f.files["ok"] = "still here\n"
	out, errs, status := run(t, f.path, []string{"/etc/passwd", "gone", "ok"}, "")
	assert.Equal(t, "still here\n", out)
	assert.Equal(t, "lcat: permission denied: /etc/passwd is outside the allowed directories\nlcat: gone: no such file\n", errs)
	assert.Equal(t, 1, status)
}

func TestRemoteStdin(t *testing.T) {
	f := newFakeSocket(t)
	f.files["x"] = "X\n"
	out, _, status := run(t, f.path, nil, "from stdin\n")
	assert.Equal(t, "from stdin\n", out, "no files")
	assert.Equal(t, 0, status, "no files")
	out, _, status = run(t, f.path, []string{"x", "-", "x"}, "in\n")
	assert.Equal(t, "X\nin\nX\n", out, "x - x")
	assert.Equal(t, 0, status, "x - x")
}

func TestRemoteCutShort(t *testing.T) {
	f := newFakeSocket(t)
	f.files["f"] = "abc"
	f.short["f"] = 10
	out, errs, status := run(t, f.path, []string{"f"}, "")
	assert.Equal(t, "abc", out)
	assert.Contains(t, errs, "lcat: f: transfer cut short: got 3 of 10 bytes")
	assert.Equal(t, 1, status)
}

func TestRemoteReshdError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _, _ = proto.ReadMessage(c)
		_ = proto.WriteMessage(c, proto.TypeError, proto.Error{Message: "reshd: cannot reach the client: session shutdown"})
	}()
	_, errs, status := run(t, path, []string{"f"}, "")
	<-done
	assert.Equal(t, "lcat: f: reshd: cannot reach the client: session shutdown\n", errs)
	assert.Equal(t, 1, status)
}

func TestRemoteNoSession(t *testing.T) {
	_, errs, status := run(t, "", []string{"f"}, "")
	assert.Equal(t, "lcat: not inside a resh session (RESH_SOCKET is not set)\n", errs, "unset")
	assert.Equal(t, 1, status, "unset")
	missing := filepath.Join(t.TempDir(), "nothing")
	_, errs, status = run(t, missing, []string{"f", "g"}, "")
	assert.True(t, strings.HasPrefix(errs, "lcat: not inside a resh session (cannot reach RESH_SOCKET "+missing), "unreachable: %q", errs)
	assert.Equal(t, 1, strings.Count(errs, "\n"), "one line")
	assert.Equal(t, 1, status, "unreachable")
}
