package cat

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	var last int64
	done := make(chan error, 1)
	go func() {
		done <- ServeRead(client, proto.TransferOpen{Op: proto.OpRead, Path: "data.bin", Tool: "lcat"}, dirs, func(n int64) { last = n })
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
	if last != int64(len(data)) {
		t.Fatalf("progress ended at %d, want %d", last, len(data))
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
	} {
		client, tool := streamtest.Pair(t)
		done := make(chan error, 1)
		go func() { done <- ServeRead(client, proto.TransferOpen{Op: proto.OpRead, Path: c.path}, dirs, nil) }()
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
