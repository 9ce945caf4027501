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
	if out != in {
		t.Errorf("stdout: %d bytes, want %d", len(out), len(in))
	}
	if errs != "" || status != 0 {
		t.Errorf("stderr %q, status %d", errs, status)
	}
	for _, name := range []string{"one.txt", "dir/two.txt"} {
		got, open := f.get(name)
		if got != in {
			t.Errorf("%s: %d bytes, want %d", name, len(got), len(in))
		}
		if open.Op != proto.OpWrite || open.Tool != "ltee" {
			t.Errorf("%s: opened with %+v, want op write, tool ltee", name, open)
		}
	}
}

func TestRemoteAppend(t *testing.T) {
	f := newFakeSocket(t)
	if _, errs, status := run(t, f.path, []string{"log"}, true, "more\n"); status != 0 {
		t.Fatalf("stderr %q, status %d", errs, status)
	}
	if got, open := f.get("log"); open.Op != proto.OpAppend || got != "more\n" {
		t.Errorf("ltee -a sent %+v with %q, want op append", open, got)
	}
}

func TestRemoteRefusedFileDropped(t *testing.T) {
	f := newFakeSocket(t)
	f.refused["/etc/shadow"] = "permission denied: /etc/shadow is outside the allowed directories"
	out, errs, status := run(t, f.path, []string{"/etc/shadow", "ok.txt"}, false, "data\n")
	if out != "data\n" {
		t.Errorf("stdout %q", out)
	}
	if got, _ := f.get("ok.txt"); got != "data\n" {
		t.Errorf("ok.txt = %q: a refused file must not stop the others", got)
	}
	if errs != "ltee: /etc/shadow: permission denied: /etc/shadow is outside the allowed directories\n" || status != 1 {
		t.Errorf("stderr %q, status %d", errs, status)
	}
}

func TestRemoteWriteFailure(t *testing.T) {
	f := newFakeSocket(t)
	f.failing["full.txt"] = "full.txt: no space left on device"
	out, errs, status := run(t, f.path, []string{"full.txt", "ok.txt"}, false, "data\n")
	if out != "data\n" {
		t.Errorf("stdout %q", out)
	}
	if got, _ := f.get("ok.txt"); got != "data\n" {
		t.Errorf("ok.txt = %q", got)
	}
	if errs != "ltee: full.txt: no space left on device\n" || status != 1 {
		t.Errorf("stderr %q, status %d", errs, status)
	}
}

func TestRemoteNoFiles(t *testing.T) {
	f := newFakeSocket(t)
	if out, errs, status := run(t, f.path, nil, false, "just stdout\n"); out != "just stdout\n" || errs != "" || status != 0 {
		t.Errorf("stdout %q, stderr %q, status %d", out, errs, status)
	}
}

func TestRemoteNoSession(t *testing.T) {
	out, errs, status := run(t, "", []string{"f"}, false, "x")
	if errs != "ltee: not inside a resh session (RESH_SOCKET is not set)\n" || status != 1 || out != "" {
		t.Errorf("unset: stdout %q, stderr %q, status %d", out, errs, status)
	}
	missing := filepath.Join(t.TempDir(), "nothing")
	_, errs, status = run(t, missing, []string{"f", "g"}, false, "x")
	if !strings.HasPrefix(errs, "ltee: not inside a resh session (cannot reach RESH_SOCKET "+missing) || strings.Count(errs, "\n") != 1 || status != 1 {
		t.Errorf("unreachable: stderr %q, status %d", errs, status)
	}
}
