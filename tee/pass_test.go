package tee

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/access"
	"resh/internal/streamtest"
	"resh/proto"
)

// fakeReshd takes ltee's stdin and stdout over, as reshd does: it copies
// one to the other itself, answers each path (refusing those in refused),
// and ends with done. With decline it answers TransferPass with an Error,
// as an older reshd does, and then plays the relay and the client.
type fakeReshd struct {
	path    string
	refused map[string]string
	done    proto.TransferDone
	hangUp  bool // end the connection instead of sending done
	decline bool

	mu     sync.Mutex
	passes []proto.TransferPass
	opens  int
	files  map[string]string
}

// newFakeReshd starts the fake once setup has filled it in.
func newFakeReshd(t *testing.T, setup func(*fakeReshd)) *fakeReshd {
	t.Helper()
	f := &fakeReshd{path: filepath.Join(t.TempDir(), "s"), refused: map[string]string{}, files: map[string]string{}}
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
		_ = proto.WriteMessage(c, proto.TypeTransferReply, proto.TransferReply{OK: true})
		b, _ := io.ReadAll(c)
		f.mu.Lock()
		f.opens++
		f.files[open.Path] = string(b)
		f.mu.Unlock()
		_ = proto.WriteMessage(c, proto.TypeTransferResult, proto.TransferResult{OK: true, Bytes: int64(len(b))})
	case proto.TypeTransferPass:
		var p proto.TransferPass
		_ = proto.Decode(body, &p)
		f.mu.Lock()
		f.passes = append(f.passes, p)
		f.mu.Unlock()
		if f.decline || len(files) != 2 {
			_ = proto.WriteMessage(c, proto.TypeError, proto.Error{Message: "reshd: expected TransferOpen (type 8), got type 12"})
			return
		}
		for _, path := range p.Paths {
			reply := proto.TransferReply{OK: true}
			if msg, ok := f.refused[path]; ok {
				reply = proto.TransferReply{Error: msg}
			}
			_ = proto.WriteMessage(c, proto.TypeTransferReply, reply)
		}
		_, _ = io.Copy(files[1], files[0])
		_ = files[1].Close()
		if !f.hangUp {
			_ = proto.WriteMessage(c, proto.TypeTransferDone, f.done)
		}
	}
}

// runFiles is ltee with stdin and stdout pipes, which it can pass.
func runFiles(t *testing.T, socket string, files []string, in string) (stdout, stderr string, status int) {
	t.Helper()
	inR, inW, err := os.Pipe()
	require.NoError(t, err)
	defer inR.Close()
	outR, outW, err := os.Pipe()
	require.NoError(t, err)
	defer outR.Close()
	go func() { _, _ = io.WriteString(inW, in); _ = inW.Close() }()
	got := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(outR); got <- b }()
	var errb bytes.Buffer
	status = Remote(context.Background(), socket, files, false, inR, outW, &errb)
	_ = outW.Close()
	return string(<-got), errb.String(), status
}

// ltee passes stdin and stdout; it reports the refusals as they come, then
// reshd's messages.
func TestRemotePassesStdinStdout(t *testing.T) {
	f := newFakeReshd(t, func(f *fakeReshd) {
		f.refused["/etc/shadow"] = "permission denied: /etc/shadow is outside the allowed directories"
		f.done = proto.TransferDone{Errors: []string{"full.txt: no space left on device"}}
	})
	out, errs, status := runFiles(t, f.path, []string{"full.txt", "/etc/shadow", "ok.txt"}, "data\n")
	want := "ltee: permission denied: /etc/shadow is outside the allowed directories\n" +
		"ltee: full.txt: no space left on device\n"
	assert.Equal(t, "data\n", out)
	assert.Equal(t, want, errs)
	assert.Equal(t, 1, status)
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Len(t, f.passes, 1)
	assert.Zero(t, f.opens, "relayed opens")
	p := f.passes[0]
	assert.Equal(t, proto.OpWrite, p.Op)
	assert.Equal(t, "ltee", p.Tool)
	assert.Len(t, p.Paths, 3)
	assert.False(t, p.SIGPIPE)
}

func TestRemotePassDeclined(t *testing.T) {
	f := newFakeReshd(t, func(f *fakeReshd) { f.decline = true })
	out, errs, status := runFiles(t, f.path, []string{"a", "b"}, "data\n")
	assert.Equal(t, "data\n", out)
	assert.Empty(t, errs)
	assert.Equal(t, 0, status)
	f.mu.Lock()
	defer f.mu.Unlock()
	assert.Len(t, f.passes, 1)
	assert.Equal(t, 2, f.opens, "relayed opens")
	assert.Equal(t, "data\n", f.files["a"])
	assert.Equal(t, "data\n", f.files["b"])
}

func TestRemotePassHangUp(t *testing.T) {
	f := newFakeReshd(t, func(f *fakeReshd) { f.hangUp = true })
	_, errs, status := runFiles(t, f.path, []string{"a"}, "data\n")
	assert.Equal(t, "ltee: the resh session ended before the transfer did\n", errs)
	assert.Equal(t, 1, status)
}

// serveChunked runs ServeWrite on a stream whose TransferOpen offered
// chunks, and returns the tool's end with ServeWrite's outcome to come.
func serveChunked(t *testing.T, dirs *access.Dirs, path string) (io.ReadWriteCloser, <-chan error) {
	t.Helper()
	client, tool := streamtest.Pair(t)
	done := make(chan error, 1)
	go func() {
		done <- ServeWrite(t.Context(), client, proto.TransferOpen{Op: proto.OpWrite, Path: path, Tool: "ltee", Chunks: true}, dirs, nil)
	}()
	var reply proto.TransferReply
	require.NoError(t, proto.Expect(tool, proto.TypeTransferReply, &reply))
	require.Equal(t, proto.TransferReply{OK: true, Chunks: true}, reply, "ok, taking chunks")
	return tool, done
}

// The client takes chunks, and tells an incomplete file from a complete
// one by the end mark.
func TestServeWriteChunks(t *testing.T) {
	dir := t.TempDir()
	dirs, err := access.New(dir, nil)
	require.NoError(t, err)
	defer dirs.Close()
	chunk := func(w io.Writer, s string) {
		b := append(make([]byte, proto.ChunkHeader), s...)
		proto.PutChunkHeader(b)
		_, err := w.Write(b)
		require.NoError(t, err)
	}
	big := strings.Repeat("x", 300<<10)
	cases := []struct {
		name    string
		end     *proto.TransferEnd // nil: the stream ends without one
		wantErr string
		result  bool
	}{
		{"complete", &proto.TransferEnd{OK: true, Bytes: int64(len(big) + 4)}, "", true},
		{"incomplete", &proto.TransferEnd{Error: "ltee ended before its input did", Bytes: int64(len(big) + 4)},
			"incomplete was cut after 307204 bytes (ltee ended before its input did): kept as incomplete.partial", true},
		{"miscounted", &proto.TransferEnd{OK: true, Bytes: 3}, "miscounted was cut after 307204 bytes (got 307204 bytes, reshd sent 3): kept as miscounted.partial", true},
		{"no end", nil, "no end was cut after 307204 bytes (the data ended without its end mark: ltee or reshd was killed): kept as no end.partial", false},
	}
	for _, c := range cases {
		tool, done := serveChunked(t, dirs, c.name)
		chunk(tool, big)
		chunk(tool, "tail")
		if c.end != nil {
			require.NoError(t, proto.WriteEnd(tool, *c.end))
		}
		_ = tool.Close()
		var res proto.TransferResult
		err := proto.Expect(tool, proto.TypeTransferResult, &res)
		if c.result {
			assert.NoError(t, err, c.name)
			assert.Equal(t, proto.TransferResult{OK: true, Bytes: int64(len(big) + 4)}, res, c.name)
		} else {
			assert.Error(t, err, "%s: no result", c.name)
		}
		err = <-done
		name := c.name
		if c.wantErr == "" {
			assert.NoError(t, err, c.name)
		} else {
			var inc *IncompleteError
			require.ErrorAs(t, err, &inc, c.name)
			assert.Equal(t, c.wantErr, inc.Message())
			name += PartialSuffix
			assert.NoFileExists(t, filepath.Join(dir, c.name), "still there under its name")
		}
		got, _ := os.ReadFile(filepath.Join(dir, name))
		assert.Equal(t, len(big)+4, len(got), "%s: all the bytes that came", name)
		assert.True(t, string(got) == big+"tail", name)
	}

	// An append cut stays in place.
	writeTo := filepath.Join(dir, "log")
	require.NoError(t, os.WriteFile(writeTo, []byte("0123456789"), 0o644))
	client, tool := streamtest.Pair(t)
	done := make(chan error, 1)
	go func() {
		done <- ServeWrite(t.Context(), client, proto.TransferOpen{Op: proto.OpAppend, Path: "log", Chunks: true}, dirs, nil)
	}()
	var reply proto.TransferReply
	require.NoError(t, proto.Expect(tool, proto.TypeTransferReply, &reply))
	require.True(t, reply.Chunks, "reply %+v", reply)
	chunk(tool, "abc")
	_ = tool.Close()
	want := "log was cut after 3 bytes (the data ended without its end mark: ltee or reshd was killed): the append at offset 10 is incomplete from offset 13"
	var inc *IncompleteError
	require.ErrorAs(t, <-done, &inc)
	assert.Equal(t, want, inc.Message())
	got, _ := os.ReadFile(writeTo)
	assert.Equal(t, "0123456789abc", string(got))
}

// Copy with a broken stdout and onSIGPIPE: it stops at once, and the
// client learns its file is incomplete.
func TestCopySIGPIPE(t *testing.T) {
	dir := t.TempDir()
	dirs, err := access.New(dir, nil)
	require.NoError(t, err)
	defer dirs.Close()
	tool, served := serveChunked(t, dirs, "f")
	r, w, err := os.Pipe()
	require.NoError(t, err)
	_ = r.Close()
	defer w.Close()
	called := false
	in := strings.NewReader(strings.Repeat("y\n", 1<<20))
	sink := NewSink("f", toolConn{tool}, true)
	msgs, piped := Copy(context.Background(), in, w, []*Sink{sink}, func() { called = true })
	assert.True(t, called, "onSIGPIPE called")
	assert.True(t, piped)
	assert.Empty(t, msgs)
	err = <-served
	require.Error(t, err, "the file is incomplete")
	assert.Contains(t, err.Error(), "killed by SIGPIPE")
	assert.GreaterOrEqual(t, in.Len(), 2<<20-bufSize, "Copy read %d bytes past the broken pipe", 2<<20-in.Len())

	// Without onSIGPIPE it is an error, and the copy goes on.
	tool, served = serveChunked(t, dirs, "g")
	sink = NewSink("g", toolConn{tool}, true)
	msgs, piped = Copy(context.Background(), strings.NewReader("z\n"), w, []*Sink{sink}, nil)
	assert.False(t, piped)
	assert.Equal(t, []string{"standard output: write |1: broken pipe"}, msgs)
	assert.NoError(t, <-served)
}

// toolConn is a yamux stream as a Conn: Close half-closes.
type toolConn struct{ io.ReadWriteCloser }

func (c toolConn) CloseWrite() error { return c.Close() }

// brokenAfter is a stdout whose reader goes away after taking left bytes:
// the write in progress then returns what went out with EPIPE, as a pipe
// does.
type brokenAfter struct {
	left int
	got  []byte
}

func (b *brokenAfter) Write(p []byte) (int, error) {
	if len(p) <= b.left {
		b.left -= len(p)
		b.got = append(b.got, p...)
		return len(p), nil
	}
	n := b.left
	b.left = 0
	b.got = append(b.got, p[:n]...)
	return n, &os.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.EPIPE}
}

// What went to stdout in a write that then broke goes to the files too:
// with onSIGPIPE the file is cut there, and its end mark is out before
// onSIGPIPE is called; without, the copy goes on and the file gets all.
func TestCopyBrokenWriteReachesFiles(t *testing.T) {
	dir := t.TempDir()
	dirs, err := access.New(dir, nil)
	require.NoError(t, err)
	defer dirs.Close()
	data := strings.Repeat("0123456789abcdef", 3*bufSize/16)

	tool, served := serveChunked(t, dirs, "piped")
	out := &brokenAfter{left: bufSize + 1000} // in the middle of the second read
	conn := &halfCloseWatch{Conn: toolConn{tool}}
	called, endFirst := false, false
	msgs, piped := Copy(context.Background(), strings.NewReader(data), out, []*Sink{NewSink("piped", conn, true)}, func() {
		called, endFirst = true, conn.halfClosed
	})
	assert.True(t, piped)
	assert.Empty(t, msgs)
	assert.True(t, called, "onSIGPIPE called")
	assert.True(t, endFirst, "the data ended before onSIGPIPE was called")
	err = <-served
	var inc *IncompleteError
	require.ErrorAs(t, err, &inc)
	assert.Equal(t, "ltee was killed by SIGPIPE", inc.Reason)
	got, err := os.ReadFile(filepath.Join(dir, "piped.partial"))
	require.NoError(t, err)
	assert.Equal(t, bufSize+1000, len(out.got))
	assert.Equal(t, len(out.got), len(got), "the file holds what went to stdout")
	assert.True(t, string(got) == string(out.got), "the file holds what went to stdout")
	assert.Equal(t, int64(len(got)), inc.Bytes, "reported")

	tool, served = serveChunked(t, dirs, "error")
	out = &brokenAfter{left: bufSize + 1000}
	msgs, piped = Copy(context.Background(), strings.NewReader(data), out, []*Sink{NewSink("error", toolConn{tool}, true)}, nil)
	assert.False(t, piped)
	assert.Equal(t, []string{"standard output: write /dev/stdout: broken pipe"}, msgs)
	require.NoError(t, <-served)
	got, err = os.ReadFile(filepath.Join(dir, "error"))
	require.NoError(t, err)
	assert.True(t, string(got) == data, "the file got %d bytes, want all %d", len(got), len(data))
}

// halfCloseWatch says whether the data was ended.
type halfCloseWatch struct {
	Conn
	halfClosed bool
}

func (h *halfCloseWatch) CloseWrite() error {
	h.halfClosed = true
	return h.Conn.CloseWrite()
}
