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
	if want := f.files["a.txt"] + f.files["dir/b.txt"]; out != want {
		t.Errorf("stdout: %d bytes, want %d", len(out), len(want))
	}
	if errs != "" || status != 0 {
		t.Errorf("stderr %q, status %d", errs, status)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, o := range f.opens {
		if o.Op != proto.OpRead || o.Tool != "lcat" {
			t.Errorf("open %d = %+v, want op read, tool lcat", i, o)
		}
	}
}

func TestRemoteRefusedFileContinues(t *testing.T) {
	f := newFakeSocket(t)
	f.refused["/etc/passwd"] = "permission denied: /etc/passwd is outside the allowed directories"
	f.refused["gone"] = "no such file"
	f.files["ok"] = "still here\n"
	out, errs, status := run(t, f.path, []string{"/etc/passwd", "gone", "ok"}, "")
	if out != "still here\n" {
		t.Errorf("stdout %q", out)
	}
	want := "lcat: /etc/passwd: permission denied: /etc/passwd is outside the allowed directories\nlcat: gone: no such file\n"
	if errs != want {
		t.Errorf("stderr %q, want %q", errs, want)
	}
	if status != 1 {
		t.Errorf("status %d, want 1", status)
	}
}

func TestRemoteStdin(t *testing.T) {
	f := newFakeSocket(t)
	f.files["x"] = "X\n"
	if out, _, status := run(t, f.path, nil, "from stdin\n"); out != "from stdin\n" || status != 0 {
		t.Errorf("no files: %q, %d", out, status)
	}
	if out, _, status := run(t, f.path, []string{"x", "-", "x"}, "in\n"); out != "X\nin\nX\n" || status != 0 {
		t.Errorf("x - x: %q, %d", out, status)
	}
}

func TestRemoteCutShort(t *testing.T) {
	f := newFakeSocket(t)
	f.files["f"] = "abc"
	f.short["f"] = 10
	out, errs, status := run(t, f.path, []string{"f"}, "")
	if out != "abc" || status != 1 || !strings.Contains(errs, "lcat: f: transfer cut short: got 3 of 10 bytes") {
		t.Errorf("stdout %q, stderr %q, status %d", out, errs, status)
	}
}

func TestRemoteReshdError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
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
	if errs != "lcat: f: reshd: cannot reach the client: session shutdown\n" || status != 1 {
		t.Errorf("stderr %q, status %d", errs, status)
	}
}

func TestRemoteNoSession(t *testing.T) {
	_, errs, status := run(t, "", []string{"f"}, "")
	if errs != "lcat: not inside a resh session (RESH_SOCKET is not set)\n" || status != 1 {
		t.Errorf("unset: stderr %q, status %d", errs, status)
	}
	missing := filepath.Join(t.TempDir(), "nothing")
	_, errs, status = run(t, missing, []string{"f", "g"}, "")
	if !strings.HasPrefix(errs, "lcat: not inside a resh session (cannot reach RESH_SOCKET "+missing) || strings.Count(errs, "\n") != 1 || status != 1 {
		t.Errorf("unreachable: stderr %q, status %d", errs, status)
	}
}
