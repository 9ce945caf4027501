package cat

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"resh/access"
	"resh/internal/streamtest"
	"resh/proto"
)

func TestClientServeReadFile(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	cwd := t.TempDir()
	data := bytes.Repeat([]byte("0123456789abcdef"), 100000) // 1.6 MB, more than a window
	if err := os.WriteFile(filepath.Join(cwd, "data.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	dirs, err := access.New(cwd, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dirs.Close()
	client, tool := streamtest.Pair(t)
	m := &meter{}
	done := make(chan error, 1)
	go func() {
		done <- ServeRead(t.Context(), client, proto.TransferOpen{Op: proto.OpRead, Path: "data.bin", Tool: "lcat"}, dirs, m)
	}()
	var reply proto.TransferReply
	if err := proto.Expect(tool, proto.TypeTransferReply, &reply); err != nil {
		t.Fatal(err)
	}
	if !reply.OK || reply.Size != int64(len(data)) {
		t.Fatalf("reply %+v, want ok with size %d", reply, len(data))
	}
	got, err := io.ReadAll(tool)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("received %d bytes, want the file's %d", len(got), len(data))
	}
	if m.n != int64(len(data)) || m.size != int64(len(data)) {
		t.Fatalf("meter: opened with size %d, ended at %d; want %d", m.size, m.n, len(data))
	}
	tool.Close()
}

func TestClientServeReadRefused(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	dirs, err := access.New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
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
		if err := proto.Expect(tool, proto.TypeTransferReply, &reply); err != nil {
			t.Fatal(err)
		}
		if reply.OK || reply.Error != c.want {
			t.Fatalf("%s: reply %+v, want refusal %q", c.path, reply, c.want)
		}
		if rest, err := io.ReadAll(tool); err != nil || len(rest) != 0 {
			t.Fatalf("%s: after refusal read %q, %v; want EOF", c.path, rest, err)
		}
		if err := <-done; err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: ServeRead returned %v", c.path, err)
		}
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
	if err := os.WriteFile(filepath.Join(cwd, "big"), make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	dirs, err := access.New(cwd, []string{"/dev/zero"})
	if err != nil {
		t.Fatal(err)
	}
	defer dirs.Close()
	for _, path := range []string{"big", "/dev/zero"} {
		client, tool := streamtest.Pair(t)
		m := &meter{}
		done := make(chan error, 1)
		go func() {
			done <- ServeRead(t.Context(), client, proto.TransferOpen{Op: proto.OpRead, Path: path}, dirs, m)
		}()
		var reply proto.TransferReply
		if err := proto.Expect(tool, proto.TypeTransferReply, &reply); err != nil || !reply.OK {
			t.Fatalf("%s: reply %+v, %v", path, reply, err)
		}
		if _, err := io.ReadFull(tool, make([]byte, 1<<20)); err != nil {
			t.Fatal(err)
		}
		tool.Close() // reshd: lcat's reader is gone
		drained := make(chan int64, 1)
		go func() { n, _ := io.Copy(io.Discard, tool); drained <- n }()
		var err error
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the client still sends after reshd's end", path)
		}
		var se *StoppedError
		if !errors.As(err, &se) || se.Path != path {
			t.Fatalf("%s: ServeRead returned %v, want a StoppedError", path, err)
		}
		n := <-drained
		if se.Sent != m.n || se.Sent > 8<<20 || 1<<20+n != se.Sent {
			t.Errorf("%s: sent %d bytes (meter %d, reshd read %d after the first MiB); want well below %d", path, se.Sent, m.n, n, size)
		}
	}
}
