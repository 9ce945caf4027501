package tee

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

// fakeSocket is a RESH_SOCKET whose far end is a fake client that stores
// written files, refuses the names in refused, and fails the writes of the
// names in failing (after reading everything, like the real client).
type fakeSocket struct {
	path    string
	refused map[string]string
	failing map[string]string

	mu    sync.Mutex
	files map[string]string
	opens map[string]proto.TransferOpen
}

func newFakeSocket(t *testing.T) *fakeSocket {
	t.Helper()
	f := &fakeSocket{
		path:    filepath.Join(t.TempDir(), "s"),
		refused: map[string]string{}, failing: map[string]string{},
		files: map[string]string{}, opens: map[string]proto.TransferOpen{},
	}
	streamtest.ServeUnix(t, f.path, f.serve)
	return f
}

func (f *fakeSocket) serve(c net.Conn) {
	var open proto.TransferOpen
	if err := proto.Expect(c, proto.TypeTransferOpen, &open); err != nil {
		return
	}
	f.mu.Lock()
	f.opens[open.Path] = open
	f.mu.Unlock()
	if msg, ok := f.refused[open.Path]; ok {
		_ = proto.WriteMessage(c, proto.TypeTransferReply, proto.TransferReply{Error: msg})
		return
	}
	_ = proto.WriteMessage(c, proto.TypeTransferReply, proto.TransferReply{OK: true})
	b, err := io.ReadAll(c)
	res := proto.TransferResult{OK: err == nil, Bytes: int64(len(b))}
	if msg, ok := f.failing[open.Path]; ok {
		res = proto.TransferResult{Error: msg, Bytes: 3}
	}
	f.mu.Lock()
	f.files[open.Path] = string(b)
	f.mu.Unlock()
	_ = proto.WriteMessage(c, proto.TypeTransferResult, res)
}

func (f *fakeSocket) get(name string) (string, proto.TransferOpen) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.files[name], f.opens[name]
}

func run(t *testing.T, socket string, files []string, appendMode bool, stdin string) (stdout, stderr string, status int) {
	t.Helper()
	var out, errb bytes.Buffer
	status = Remote(context.Background(), socket, files, appendMode, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), status
}

func TestRemoteWritesStdoutAndFiles(t *testing.T) {
	f := newFakeSocket(t)
	in := strings.Repeat("a line of input\n", 20000)
	out, errs, status := run(t, f.path, []string{"one.txt", "dir/two.txt"}, false, in)
	assert.Equal(t, in, out)
	assert.Empty(t, errs)
	assert.Equal(t, 0, status)
	for _, name := range []string{"one.txt", "dir/two.txt"} {
		got, open := f.get(name)
		assert.Equal(t, in, got, name)
		assert.Equal(t, proto.OpWrite, open.Op, name)
		assert.Equal(t, "ltee", open.Tool, name)
	}
}

func TestRemoteAppend(t *testing.T) {
	f := newFakeSocket(t)
	_, errs, status := run(t, f.path, []string{"log"}, true, "more\n")
	require.Equal(t, 0, status, "stderr %q", errs)
	got, open := f.get("log")
	assert.Equal(t, proto.OpAppend, open.Op, "ltee -a")
	assert.Equal(t, "more\n", got)
}

func TestRemoteRefusedFileDropped(t *testing.T) {
	f := newFakeSocket(t)
	f.refused["/etc/shadow"] = "permission denied: /etc/shadow is outside the allowed directories"
	out, errs, status := run(t, f.path, []string{"/etc/shadow", "ok.txt"}, false, "data\n")
	assert.Equal(t, "data\n", out)
	got, _ := f.get("ok.txt")
	assert.Equal(t, "data\n", got, "a refused file must not stop the others")
	assert.Equal(t, "ltee: permission denied: /etc/shadow is outside the allowed directories\n", errs)
	assert.Equal(t, 1, status)
}

func TestRemoteWriteFailure(t *testing.T) {
	f := newFakeSocket(t)
	f.failing["full.txt"] = "full.txt: no space left on device"
	out, errs, status := run(t, f.path, []string{"full.txt", "ok.txt"}, false, "data\n")
	assert.Equal(t, "data\n", out)
	got, _ := f.get("ok.txt")
	assert.Equal(t, "data\n", got)
	assert.Equal(t, "ltee: full.txt: no space left on device\n", errs)
	assert.Equal(t, 1, status)
}

func TestRemoteNoFiles(t *testing.T) {
	f := newFakeSocket(t)
	out, errs, status := run(t, f.path, nil, false, "just stdout\n")
	assert.Equal(t, "just stdout\n", out)
	assert.Empty(t, errs)
	assert.Equal(t, 0, status)
}

func TestRemoteNoSession(t *testing.T) {
	out, errs, status := run(t, "", []string{"f"}, false, "x")
	assert.Empty(t, out, "unset")
	assert.Equal(t, "ltee: not inside a resh session (RESH_SOCKET is not set)\n", errs, "unset")
	assert.Equal(t, 1, status, "unset")
	missing := filepath.Join(t.TempDir(), "nothing")
	_, errs, status = run(t, missing, []string{"f", "g"}, false, "x")
	assert.True(t, strings.HasPrefix(errs, "ltee: not inside a resh session (cannot reach RESH_SOCKET "+missing), "unreachable: %q", errs)
	assert.Equal(t, 1, strings.Count(errs, "\n"), "one line")
	assert.Equal(t, 1, status, "unreachable")
}
