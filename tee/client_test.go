package tee

import (
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

// transfer runs one ltee transfer of data and returns the reply and result.
func transfer(t *testing.T, dirs *access.Dirs, op, path, data string) (proto.TransferReply, proto.TransferResult, error) {
	t.Helper()
	client, tool := streamtest.Pair(t)
	m := &meter{}
	done := make(chan error, 1)
	go func() {
		done <- ServeWrite(t.Context(), client, proto.TransferOpen{Op: op, Path: path, Tool: "ltee"}, dirs, m)
	}()
	var reply proto.TransferReply
	var res proto.TransferResult
	if err := proto.Expect(tool, proto.TypeTransferReply, &reply); err != nil {
		t.Fatal(err)
	}
	if reply.OK {
		if _, err := io.Copy(tool, strings.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		tool.Close()
		if err := proto.Expect(tool, proto.TypeTransferResult, &res); err != nil {
			t.Fatal(err)
		}
	}
	if rest, err := io.ReadAll(tool); err != nil || len(rest) != 0 {
		t.Fatalf("after the transfer read %q, %v; want EOF", rest, err)
	}
	tool.Close()
	err := <-done
	if res.OK && m.n != int64(len(data)) {
		t.Fatalf("progress ended at %d, want %d", m.n, len(data))
	}
	return reply, res, err
}

func TestClientServeWriteAppend(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	cwd := t.TempDir()
	dirs, err := access.New(cwd, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dirs.Close()
	big := strings.Repeat("line of text\n", 50000) // 650 KB, more than a window
	steps := []struct{ op, data, want string }{
		{proto.OpWrite, big, big},
		{proto.OpWrite, "first\n", "first\n"},
		{proto.OpAppend, "second\n", "first\nsecond\n"},
	}
	for _, s := range steps {
		reply, res, err := transfer(t, dirs, s.op, "out.txt", s.data)
		if err != nil {
			t.Fatal(err)
		}
		if !reply.OK || !res.OK || res.Bytes != int64(len(s.data)) {
			t.Fatalf("%s %d bytes: reply %+v result %+v", s.op, len(s.data), reply, res)
		}
		got, err := os.ReadFile(filepath.Join(cwd, "out.txt"))
		if err != nil || string(got) != s.want {
			t.Fatalf("after %s: file has %d bytes (%v), want %d", s.op, len(got), err, len(s.want))
		}
	}
}

func TestClientServeWriteRefused(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	parent := t.TempDir()
	cwd := filepath.Join(parent, "cwd")
	if err := os.Mkdir(cwd, 0o755); err != nil {
		t.Fatal(err)
	}
	dirs, err := access.New(cwd, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dirs.Close()
	outside := filepath.Join(parent, "x")
	for _, c := range []struct{ path, want string }{
		{outside, "permission denied: " + outside + " is outside the directories resh allows (add one with -allow)"},
		{"../x", "permission denied: ../x is outside the directories resh allows (add one with -allow)"},
		{"nodir/x", "no such file: nodir/x"},
	} {
		reply, _, err := transfer(t, dirs, proto.OpAppend, c.path, "data")
		if reply.OK || reply.Error != c.want {
			t.Fatalf("%s: reply %+v, want refusal %q", c.path, reply, c.want)
		}
		if err == nil {
			t.Fatalf("%s: ServeWrite returned nil", c.path)
		}
	}
	if _, err := os.Stat(outside); !os.IsNotExist(err) {
		t.Fatalf("a refused ltee created %s (%v)", outside, err)
	}
}

func TestClientServeWriteDiskError(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	dirs, err := access.New("/dev", []string{"/dev/full"})
	if err != nil {
		t.Fatal(err)
	}
	defer dirs.Close()
	reply, res, err := transfer(t, dirs, proto.OpAppend, "full", strings.Repeat("x", 200000))
	if !reply.OK || res.OK || !strings.Contains(res.Error, "no space left") || err == nil {
		t.Fatalf("writing /dev/full: reply %+v result %+v err %v; want a result with the write error", reply, res, err)
	}
}

// meter records what ServeWrite reports.
type meter struct{ size, n int64 }

func (m *meter) Opened(size int64) { m.size = size }
func (m *meter) Update(n int64)    { m.n = n }
