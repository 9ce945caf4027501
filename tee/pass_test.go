package tee

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

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
	if err != nil {
		t.Fatal(err)
	}
	defer inR.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
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
	want := "ltee: /etc/shadow: permission denied: /etc/shadow is outside the allowed directories\n" +
		"ltee: full.txt: no space left on device\n"
	if out != "data\n" || errs != want || status != 1 {
		t.Errorf("stdout %q, stderr %q, status %d", out, errs, status)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.passes) != 1 || f.opens != 0 {
		t.Fatalf("%d passes, %d relayed opens; want 1 and 0", len(f.passes), f.opens)
	}
	if p := f.passes[0]; p.Op != proto.OpWrite || p.Tool != "ltee" || len(p.Paths) != 3 || p.SIGPIPE {
		t.Errorf("pass %+v", p)
	}
}

func TestRemotePassDeclined(t *testing.T) {
	f := newFakeReshd(t, func(f *fakeReshd) { f.decline = true })
	out, errs, status := runFiles(t, f.path, []string{"a", "b"}, "data\n")
	if out != "data\n" || errs != "" || status != 0 {
		t.Errorf("stdout %q, stderr %q, status %d", out, errs, status)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.passes) != 1 || f.opens != 2 || f.files["a"] != "data\n" || f.files["b"] != "data\n" {
		t.Errorf("%d passes, %d relayed opens, files %q", len(f.passes), f.opens, f.files)
	}
}

func TestRemotePassHangUp(t *testing.T) {
	f := newFakeReshd(t, func(f *fakeReshd) { f.hangUp = true })
	_, errs, status := runFiles(t, f.path, []string{"a"}, "data\n")
	if errs != "ltee: the resh session ended before the transfer did\n" || status != 1 {
		t.Errorf("stderr %q, status %d", errs, status)
	}
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
	if err := proto.Expect(tool, proto.TypeTransferReply, &reply); err != nil || !reply.OK || !reply.Chunks {
		t.Fatalf("reply %+v, %v: want ok, taking chunks", reply, err)
	}
	return tool, done
}

// The client takes chunks, and tells an incomplete file from a complete
// one by the end mark.
func TestServeWriteChunks(t *testing.T) {
	dir := t.TempDir()
	dirs, err := access.New(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dirs.Close()
	chunk := func(w io.Writer, s string) {
		b := append(make([]byte, proto.ChunkHeader), s...)
		proto.PutChunkHeader(b)
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
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
			if err := proto.WriteEnd(tool, *c.end); err != nil {
				t.Fatal(err)
			}
		}
		_ = tool.Close()
		var res proto.TransferResult
		if err := proto.Expect(tool, proto.TypeTransferResult, &res); (err == nil) != c.result || (err == nil && (!res.OK || res.Bytes != int64(len(big)+4))) {
			t.Errorf("%s: result %+v, %v", c.name, res, err)
		}
		err := <-done
		var inc *IncompleteError
		if c.wantErr == "" && err != nil || c.wantErr != "" && (!errors.As(err, &inc) || inc.Message() != c.wantErr) {
			t.Errorf("%s: ServeWrite: %v, want %q", c.name, err, c.wantErr)
		}
		name := c.name
		if c.wantErr != "" {
			name += PartialSuffix
			if _, err := os.Lstat(filepath.Join(dir, c.name)); !os.IsNotExist(err) {
				t.Errorf("%s: still there under its name (%v)", c.name, err)
			}
		}
		if got, _ := os.ReadFile(filepath.Join(dir, name)); string(got) != big+"tail" {
			t.Errorf("%s: file has %d bytes, want all %d that came", name, len(got), len(big)+4)
		}
	}

	// An append cut stays in place.
	writeTo := filepath.Join(dir, "log")
	if err := os.WriteFile(writeTo, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	client, tool := streamtest.Pair(t)
	done := make(chan error, 1)
	go func() {
		done <- ServeWrite(t.Context(), client, proto.TransferOpen{Op: proto.OpAppend, Path: "log", Chunks: true}, dirs, nil)
	}()
	var reply proto.TransferReply
	if err := proto.Expect(tool, proto.TypeTransferReply, &reply); err != nil || !reply.Chunks {
		t.Fatalf("reply %+v, %v", reply, err)
	}
	chunk(tool, "abc")
	_ = tool.Close()
	want := "log was cut after 3 bytes (the data ended without its end mark: ltee or reshd was killed): the append at offset 10 is incomplete from offset 13"
	var inc *IncompleteError
	if err := <-done; !errors.As(err, &inc) || inc.Message() != want {
		t.Errorf("append: %v, want %q", err, want)
	}
	if got, _ := os.ReadFile(writeTo); string(got) != "0123456789abc" {
		t.Errorf("log: %q", got)
	}
}

// Copy with a broken stdout and onSIGPIPE: it stops at once, and the
// client learns its file is incomplete.
func TestCopySIGPIPE(t *testing.T) {
	dir := t.TempDir()
	dirs, err := access.New(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dirs.Close()
	tool, served := serveChunked(t, dirs, "f")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Close()
	defer w.Close()
	called := false
	in := strings.NewReader(strings.Repeat("y\n", 1<<20))
	sink := NewSink("f", toolConn{tool}, true)
	msgs, piped := Copy(context.Background(), in, w, []*Sink{sink}, func() { called = true })
	if !called || !piped || len(msgs) != 0 {
		t.Errorf("called %v, piped %v, messages %q", called, piped, msgs)
	}
	if err := <-served; err == nil || !strings.Contains(err.Error(), "killed by SIGPIPE") {
		t.Errorf("client: %v, want the file incomplete", err)
	}
	if in.Len() < 2<<20-bufSize {
		t.Errorf("Copy read %d bytes past the broken pipe", 2<<20-in.Len())
	}

	// Without onSIGPIPE it is an error, and the copy goes on.
	tool, served = serveChunked(t, dirs, "g")
	sink = NewSink("g", toolConn{tool}, true)
	msgs, piped = Copy(context.Background(), strings.NewReader("z\n"), w, []*Sink{sink}, nil)
	if piped || len(msgs) != 1 || msgs[0] != "standard output: write |1: broken pipe" {
		t.Errorf("piped %v, messages %q", piped, msgs)
	}
	if err := <-served; err != nil {
		t.Errorf("client: %v", err)
	}
}

// toolConn is a yamux stream as a Conn: Close half-closes.
type toolConn struct{ io.ReadWriteCloser }

func (c toolConn) CloseWrite() error { return c.Close() }
