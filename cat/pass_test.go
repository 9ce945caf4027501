package cat

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/internal/streamtest"
	"resh/proto"
)

// fakeReshd takes lcat's stdout over, as reshd does: it writes the file's
// data straight into the descriptor lcat passed, then sends done. With
// decline it answers TransferPass with an Error, as an older reshd does,
// and relays TransferOpen transfers from files.
type fakeReshd struct {
	path    string
	files   map[string]string
	done    map[string]proto.TransferDone
	decline bool

	mu     sync.Mutex
	passes []proto.TransferPass
	opens  int
}

// newFakeReshd starts the fake once setup has filled it in.
func newFakeReshd(t *testing.T, setup func(*fakeReshd)) *fakeReshd {
	t.Helper()
	f := &fakeReshd{path: filepath.Join(t.TempDir(), "s"), files: map[string]string{}, done: map[string]proto.TransferDone{}}
	setup(f)
	streamtest.ServeUnix(t, f.path, f.serve)
	return f
}

func (f *fakeReshd) serve(nc net.Conn) {
	c := nc.(*net.UnixConn)
	t, body, fds, err := proto.ReadMessageFDs(c)
	files := make([]*os.File, len(fds))
	for i, fd := range fds {
		files[i] = os.NewFile(uintptr(fd), "passed")
		defer files[i].Close()
	}
	if err != nil {
		return
	}
	switch t {
	case proto.TypeTransferOpen:
		var open proto.TransferOpen
		_ = proto.Decode(body, &open)
		f.mu.Lock()
		f.opens++
		f.mu.Unlock()
		data := f.files[open.Path]
		_ = proto.WriteMessage(c, proto.TypeTransferReply, proto.TransferReply{OK: true, Size: int64(len(data))})
		_, _ = io.WriteString(c, data)
	case proto.TypeTransferPass:
		var p proto.TransferPass
		_ = proto.Decode(body, &p)
		f.mu.Lock()
		f.passes = append(f.passes, p)
		f.mu.Unlock()
		if f.decline || len(files) != 1 {
			_ = proto.WriteMessage(c, proto.TypeError, proto.Error{Message: "reshd: expected TransferOpen (type 8), got type 12"})
			return
		}
		data, ok := f.files[p.Paths[0]]
		if !ok {
			_ = proto.WriteMessage(c, proto.TypeTransferReply, proto.TransferReply{Error: "no such file"})
			return
		}
		_ = proto.WriteMessage(c, proto.TypeTransferReply, proto.TransferReply{OK: true, Size: int64(len(data))})
		if _, err := io.WriteString(files[0], data); err != nil {
			return
		}
		_ = files[0].Close()
		if d, ok := f.done[p.Paths[0]]; ok {
			_ = proto.WriteMessage(c, proto.TypeTransferDone, d)
		} else if p.Paths[0] != "hang-up" {
			_ = proto.WriteMessage(c, proto.TypeTransferDone, proto.TransferDone{})
		}
	}
}

// runFile is lcat with stdout a pipe, which it can pass.
func runFile(t *testing.T, socket string, files []string) (stdout, stderr string, status int) {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	got := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(r); got <- b }()
	var errb bytes.Buffer
	status = Remote(context.Background(), socket, files, nil, w, &errb)
	_ = w.Close()
	return string(<-got), errb.String(), status
}

// lcat passes its stdout: reshd writes into it, lcat copies nothing.
func TestRemotePassesStdout(t *testing.T) {
	f := newFakeReshd(t, func(f *fakeReshd) {
		f.files["a"] = "first\n"
		f.files["b"] = "second\n"
	})
	out, errs, status := runFile(t, f.path, []string{"a", "missing", "b"})
	assert.Equal(t, "first\nsecond\n", out)
	assert.Equal(t, "lcat: missing: no such file\n", errs)
	assert.Equal(t, 1, status)
	f.mu.Lock()
	defer f.mu.Unlock()
	assert.Len(t, f.passes, 3)
	assert.Zero(t, f.opens, "relayed opens")
	for _, p := range f.passes {
		assert.Equal(t, proto.OpRead, p.Op)
		assert.Equal(t, "lcat", p.Tool)
		assert.False(t, p.SIGPIPE, "stdout is not descriptor 1")
	}
}

// An older reshd answers TransferPass with an Error: lcat uses the relay,
// and does not ask again.
func TestRemotePassDeclined(t *testing.T) {
	f := newFakeReshd(t, func(f *fakeReshd) {
		f.decline = true
		f.files["a"] = "A\n"
	})
	out, errs, status := runFile(t, f.path, []string{"a", "a"})
	assert.Equal(t, "A\nA\n", out)
	assert.Empty(t, errs)
	assert.Equal(t, 0, status)
	f.mu.Lock()
	defer f.mu.Unlock()
	assert.Len(t, f.passes, 1)
	assert.Equal(t, 2, f.opens, "relayed opens")
}

// reshd's messages: an error goes on to the next file, a failure of
// stdout ends lcat, a connection that ends without TransferDone is
// reported.
func TestRemotePassDone(t *testing.T) {
	f := newFakeReshd(t, func(f *fakeReshd) {
		f.files["short"] = "ab"
		f.done["short"] = proto.TransferDone{Errors: []string{"short: transfer cut short: got 2 of 10 bytes"}}
		f.files["hang-up"] = "h"
		f.files["full"] = "f"
		f.done["full"] = proto.TransferDone{Errors: []string{"write error: write /dev/stdout: no space left on device"}, Stdout: true}
		f.files["never"] = "n"
	})
	out, errs, status := runFile(t, f.path, []string{"short", "hang-up", "full", "never"})
	want := "lcat: short: transfer cut short: got 2 of 10 bytes\n" +
		"lcat: hang-up: the resh session ended before the transfer did\n" +
		"lcat: write error: write /dev/stdout: no space left on device\n"
	assert.Equal(t, "abhf", out)
	assert.Equal(t, want, errs)
	assert.Equal(t, 1, status)
}
