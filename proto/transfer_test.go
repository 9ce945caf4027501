package proto

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// chunked encodes data in chunks of at most size bytes, then end.
func chunked(data string, size int, end *TransferEnd) []byte {
	var b bytes.Buffer
	for len(data) > 0 {
		n := min(size, len(data))
		c := append(make([]byte, ChunkHeader), data[:n]...)
		PutChunkHeader(c)
		b.Write(c)
		data = data[n:]
	}
	if end != nil {
		_ = WriteEnd(&b, *end)
	}
	return b.Bytes()
}

func TestChunkReader(t *testing.T) {
	data := strings.Repeat("0123456789", 1000)
	for _, size := range []int{1, 7, 4096, len(data)} {
		end := TransferEnd{OK: true, Bytes: int64(len(data))}
		r := NewChunkReader(bytes.NewReader(chunked(data, size, &end)))
		got, err := io.ReadAll(r)
		if err != nil || string(got) != data || r.End != end {
			t.Errorf("chunks of %d: %d bytes, end %+v, %v", size, len(got), r.End, err)
		}
	}
	// Empty data: only the end mark.
	r := NewChunkReader(bytes.NewReader(chunked("", 1, &TransferEnd{Error: "cut"})))
	if got, err := io.ReadAll(r); err != nil || len(got) != 0 || r.End.OK || r.End.Error != "cut" {
		t.Errorf("empty: %q, %+v, %v", got, r.End, err)
	}
}

// Every proper prefix of chunked data is an unexpected end.
func TestChunkReaderTruncated(t *testing.T) {
	full := chunked("hello, world", 5, &TransferEnd{OK: true, Bytes: 12})
	for n := range len(full) {
		_, err := io.ReadAll(NewChunkReader(bytes.NewReader(full[:n])))
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("prefix of %d bytes: %v, want io.ErrUnexpectedEOF", n, err)
		}
	}
}

func TestChunkReaderTooLong(t *testing.T) {
	h := make([]byte, ChunkHeader)
	h[0] = 0xff
	if _, err := io.ReadAll(NewChunkReader(bytes.NewReader(h))); !errors.Is(err, ErrTooLong) {
		t.Errorf("chunk of 4 GiB: %v, want ErrTooLong", err)
	}
	var b bytes.Buffer
	b.Write(make([]byte, ChunkHeader))
	_ = WriteMessage(&b, TypeTransferResult, TransferResult{OK: true})
	if _, err := io.ReadAll(NewChunkReader(&b)); !errors.Is(err, ErrUnexpected) {
		t.Errorf("another message after the last chunk: %v, want ErrUnexpected", err)
	}
}

func FuzzChunkReader(f *testing.F) {
	f.Add(chunked("abc", 2, &TransferEnd{OK: true, Bytes: 3}))
	f.Add(chunked("", 1, &TransferEnd{}))
	f.Add([]byte{0, 0, 0, 9, 'x'})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewChunkReader(bytes.NewReader(b))
		data, err := io.ReadAll(r)
		if err != nil {
			return
		}
		// What decodes must encode back to a stream that decodes the same.
		again := NewChunkReader(bytes.NewReader(chunked(string(data), 3, &r.End)))
		data2, err := io.ReadAll(again)
		if err != nil || !bytes.Equal(data, data2) || again.End != r.End {
			t.Fatalf("round trip: %q %+v -> %q %+v, %v", data, r.End, data2, again.End, err)
		}
	})
}

// A TransferPass carries its descriptors; they arrive close-on-exec.
func TestPassTransferDescriptors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()

	type got struct {
		pass TransferPass
		fds  []int
		err  error
	}
	ch := make(chan got, 1)
	go func() {
		c, err := ln.AcceptUnix()
		if err != nil {
			ch <- got{err: err}
			return
		}
		defer c.Close()
		var g got
		var typ Type
		var body []byte
		typ, body, g.fds, g.err = ReadMessageFDs(c)
		if g.err == nil && typ != TypeTransferPass {
			g.err = errors.New("not a TransferPass")
		}
		if g.err == nil {
			g.err = Decode(body, &g.pass)
		}
		ch <- g
		_ = WriteMessage(c, TypeTransferReply, TransferReply{OK: true})
	}()
	want := TransferPass{Op: OpWrite, Paths: []string{"a", "b"}, Tool: "ltee"}
	c, reply, err := PassTransfer(context.Background(), path, want, r, w)
	if err != nil || !reply.OK {
		t.Fatalf("PassTransfer: %+v, %v", reply, err)
	}
	defer c.Close()
	g := <-ch
	if g.err != nil || len(g.fds) != 2 || g.pass.Op != want.Op || len(g.pass.Paths) != 2 {
		t.Fatalf("reshd got %+v, %v", g, g.err)
	}
	for _, fd := range g.fds {
		flags, err := fcntl(fd, syscall.F_GETFD)
		if err != nil || flags&syscall.FD_CLOEXEC == 0 {
			t.Errorf("descriptor %d: flags %#x, %v: want close-on-exec", fd, flags, err)
		}
	}
	// The pipe passed as stdin and the one passed as stdout are the test's.
	in, out := os.NewFile(uintptr(g.fds[0]), "in"), os.NewFile(uintptr(g.fds[1]), "out")
	defer in.Close()
	defer out.Close()
	if _, err := io.WriteString(out, "through"); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 7)
	if _, err := io.ReadFull(in, b); err != nil || string(b) != "through" {
		t.Errorf("read %q, %v", b, err)
	}
}

func fcntl(fd, cmd int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), uintptr(cmd), 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// An Error in answer to a TransferPass, as an older reshd gives, is
// ErrNoPass; a socket that is not there is ErrNoSession.
func TestPassTransferDeclined(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.AcceptUnix()
		if err != nil {
			return
		}
		defer c.Close()
		_, _, _ = ReadMessage(c) // discards the descriptors, as an older reshd does
		_ = WriteMessage(c, TypeError, Error{Message: "reshd: expected TransferOpen (type 8), got type 12"})
	}()
	if _, _, err := PassTransfer(context.Background(), path, TransferPass{Op: OpRead, Paths: []string{"f"}}, os.Stdout); !errors.Is(err, ErrNoPass) {
		t.Errorf("older reshd: %v, want ErrNoPass", err)
	}
	<-done
	if _, _, err := PassTransfer(context.Background(), filepath.Join(t.TempDir(), "none"), TransferPass{Op: OpRead, Paths: []string{"f"}}, os.Stdout); !errors.Is(err, ErrNoSession) {
		t.Errorf("no socket: %v, want ErrNoSession", err)
	}
}

// A client's refusal is prefixed with the file's name unless it names the
// file already, as a word of its own.
func TestWithPath(t *testing.T) {
	for _, c := range []struct{ name, msg, want string }{
		{"nope.csv", "no such file: nope.csv", "no such file: nope.csv"},
		{"/etc/passwd", "permission denied: /etc/passwd is outside the directories resh allows (add one with -allow)",
			"permission denied: /etc/passwd is outside the directories resh allows (add one with -allow)"},
		{"a", "refused: a is a directory, not a regular file", "refused: a is a directory, not a regular file"},
		{"x.txt", "x.txt: input/output error", "x.txt: input/output error"},
		{"a", "refused by the client", "a: refused by the client"},
		{"a.txt", "no such file: data.txt", "a.txt: no such file: data.txt"},
		{"data", "no such file: data.txt", "data: no such file: data.txt"},
		{"gone", "no such file", "gone: no such file"},
		{"f", "", "f: refused by the client"},
		{"", "no such file", ": no such file"},
	} {
		if got := WithPath(c.name, c.msg); got != c.want {
			t.Errorf("WithPath(%q, %q) = %q, want %q", c.name, c.msg, got, c.want)
		}
	}
}
