//go:build linux

package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/hashicorp/yamux"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"resh/cat"
	"resh/proto"
	"resh/tee"
)

// text is n bytes of numbered lines.
func text(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "line %d of the test data\n", i)
	}
	return b.String()[:n]
}

func writeFile(t *testing.T, dir, name, data string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// counts checks how many transfers reshd did itself and relayed.
func counts(t *testing.T, b *broker, passed, relayed int64) {
	t.Helper()
	if p, r := b.passed.Load(), b.relayed.Load(); p != passed || r != relayed {
		t.Errorf("reshd did %d transfers itself and relayed %d, want %d and %d", p, r, passed, relayed)
	}
}

// lcat with stdout a pipe hands it to reshd: reshd writes the files into
// it, and lcat copies nothing.
func TestPassLcat(t *testing.T) {
	dir := t.TempDir()
	a, big := text(100), text(3<<20)
	writeFile(t, dir, "a", a)
	writeFile(t, dir, "big", big)
	serve, _ := realClient(t, dir)
	b := startBroker(t, serve)

	r, w := pipe(t)
	got := drain(r)
	var errb bytes.Buffer
	code := cat.Remote(t.Context(), b.path, []string{"a", "missing", "big"}, nil, w, &errb)
	_ = w.Close()
	if out := <-got; string(out) != a+big {
		t.Errorf("stdout: %d bytes, want %d", len(out), len(a+big))
	}
	if code != 1 || errb.String() != "lcat: no such file: missing\n" {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	counts(t, b, 3, 0)
}

// The descriptor reshd writes is the tool's: a regular file's offset is
// shared, as with cat.
func TestPassLcatRegularFileOffset(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a", "from the client\n")
	serve, _ := realClient(t, dir)
	b := startBroker(t, serve)
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, _ = f.WriteString("before\n")
	if code := cat.Remote(t.Context(), b.path, []string{"a"}, nil, f, io.Discard); code != 0 {
		t.Fatalf("exit %d", code)
	}
	_, _ = f.WriteString("after\n")
	if got, _ := os.ReadFile(f.Name()); string(got) != "before\nfrom the client\nafter\n" {
		t.Errorf("file %q", got)
	}
	counts(t, b, 1, 0)
}

// ltee with stdin and stdout pipes hands both to reshd, which tees.
func TestPassLtee(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "y", "old\n")
	serve, results := realClient(t, dir)
	b := startBroker(t, serve)
	data := text(2 << 20)

	inR, inW := pipe(t)
	outR, outW := pipe(t)
	feed(inW, data)
	got := drain(outR)
	var errb bytes.Buffer
	code := tee.Remote(t.Context(), b.path, []string{"x", "/etc/passwd", "y"}, false, inR, outW, &errb)
	_ = outW.Close()
	if out := <-got; string(out) != data {
		t.Errorf("stdout: %d bytes, want %d", len(out), len(data))
	}
	if code != 1 || !strings.HasPrefix(errb.String(), "ltee: permission denied: /etc/passwd is outside") || strings.Count(errb.String(), "\n") != 1 {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	for _, name := range []string{"x", "y"} {
		if got := readFile(t, dir, name); got != data {
			t.Errorf("%s: %d bytes, want %d", name, len(got), len(data))
		}
	}
	for range 3 {
		if r := <-results; r.open.Path != "/etc/passwd" && r.err != nil {
			t.Errorf("client: %s: %v", r.open.Path, r.err)
		} else if r.open.Path != "/etc/passwd" && !r.open.Chunks {
			t.Errorf("client: %s: reshd did not offer chunks", r.open.Path)
		}
	}
	counts(t, b, 1, 0)

	// -a appends, relayed (stdout is no file) and passed.
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	for _, stdout := range []io.Writer{hideFile{devnull}, devnull} {
		inR, inW := pipe(t)
		feed(inW, "more\n")
		if code := tee.Remote(t.Context(), b.path, []string{"y"}, true, inR, stdout, io.Discard); code != 0 {
			t.Errorf("ltee -a: exit %d", code)
		}
		if r := <-results; r.err != nil || r.open.Op != proto.OpAppend {
			t.Errorf("client: %+v", r)
		}
	}
	if got := readFile(t, dir, "y"); got != data+"more\n"+"more\n" {
		t.Errorf("y after two ltee -a: %d bytes, want %d", len(got), len(data)+10)
	}
	counts(t, b, 2, 1)
}

// A tool killed in the middle of a transfer: reshd stops reading and
// writing its descriptors, and the client learns that the file it wrote is
// incomplete.
func TestPassKilledLtee(t *testing.T) {
	dir := t.TempDir()
	serve, results := realClient(t, dir)
	b := startBroker(t, serve)
	inR, inW := pipe(t)
	outR, outW := pipe(t)
	p := proto.TransferPass{Op: proto.OpWrite, Paths: []string{"k"}, Tool: "ltee"}
	c, reply, err := proto.PassTransfer(t.Context(), b.path, p, inR, outW)
	if err != nil || !reply.OK {
		t.Fatalf("pass: %+v, %v", reply, err)
	}
	_ = inR.Close() // the tool keeps only its connection
	_ = outW.Close()
	data := text(100 << 10)
	go func() { _, _ = io.WriteString(inW, data) }() // and no end
	seen := make([]byte, len(data))
	_ = outR.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := io.ReadFull(outR, seen); err != nil || string(seen) != data {
		t.Fatalf("stdout through reshd: %v", err)
	}

	_ = c.Close() // killed
	r := <-results
	if r.err == nil || !strings.Contains(r.err.Error(), "k was cut after 102400 bytes (ltee ended before its input did): kept as k.partial") {
		t.Errorf("client: %v, want the file reported cut", r.err)
	}
	if got := readFile(t, dir, "k.partial"); got != data {
		t.Errorf("k: %d bytes, want the %d read before the kill", len(got), len(data))
	}
	// reshd let go of both pipes: stdout ends, and stdin has no reader.
	if rest, err := io.ReadAll(outR); err != nil || len(rest) != 0 {
		t.Errorf("stdout after the kill: %d bytes, %v", len(rest), err)
	}
	_ = inW.SetWriteDeadline(time.Now().Add(testTimeout))
	if _, err := inW.Write(make([]byte, 1<<20)); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("writing stdin after the kill: %v, want EPIPE", err)
	}
}

func TestPassKilledLcat(t *testing.T) {
	dir := t.TempDir()
	big := text(8 << 20)
	writeFile(t, dir, "big", big)
	serve, results := realClient(t, dir)
	b := startBroker(t, serve)
	outR, outW := pipe(t)
	p := proto.TransferPass{Op: proto.OpRead, Paths: []string{"big"}, Tool: "lcat"}
	c, reply, err := proto.PassTransfer(t.Context(), b.path, p, outW)
	if err != nil || !reply.OK || reply.Size != int64(len(big)) {
		t.Fatalf("pass: %+v, %v", reply, err)
	}
	_ = outW.Close()
	_ = outR.SetReadDeadline(time.Now().Add(testTimeout))
	head := make([]byte, 64<<10)
	if _, err := io.ReadFull(outR, head); err != nil || string(head) != big[:len(head)] {
		t.Fatalf("stdout through reshd: %v", err)
	}
	_ = c.Close() // killed
	rest, err := io.ReadAll(outR)
	if err != nil || len(head)+len(rest) >= len(big) {
		t.Errorf("after the kill reshd wrote %d more bytes (%v): it should stop", len(rest), err)
	}
	var stopped *cat.StoppedError
	if r := <-results; !errors.As(r.err, &stopped) || stopped.Sent >= int64(len(big)) {
		t.Errorf("client: %v, want it stopped early", r.err)
	}
}

// lcat whose stdout reader goes away, where a broken pipe is an error (not
// descriptor 1): "write error", and lcat stops, as it does when it copies.
func TestPassLcatBrokenPipe(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "big", text(8<<20))
	serve, results := realClient(t, dir)
	b := startBroker(t, serve)
	r, w := pipe(t)
	go func() {
		_, _ = io.ReadFull(r, make([]byte, 10))
		_ = r.Close()
	}()
	var errb bytes.Buffer
	code := cat.Remote(t.Context(), b.path, []string{"big", "big"}, nil, w, &errb)
	if code != 1 || errb.String() != "lcat: write error: write /dev/stdout: broken pipe\n" {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	var stopped *cat.StoppedError
	if r := <-results; !errors.As(r.err, &stopped) || stopped.Sent >= 8<<20 {
		t.Errorf("client: %v, want it stopped early", r.err)
	}
	counts(t, b, 1, 0)
}

// With SIGPIPE asked (stdout is descriptor 1), a broken pipe kills the
// tool: reshd says so, and a write's files end incomplete.
func TestPassSIGPIPE(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "big", text(8<<20))
	serve, results := realClient(t, dir)
	b := startBroker(t, serve)

	outR, outW := pipe(t)
	p := proto.TransferPass{Op: proto.OpRead, Paths: []string{"big"}, Tool: "lcat", SIGPIPE: true}
	c, reply, err := proto.PassTransfer(t.Context(), b.path, p, outW)
	if err != nil || !reply.OK {
		t.Fatalf("pass: %+v, %v", reply, err)
	}
	_ = outW.Close()
	_ = outR.Close()
	var done proto.TransferDone
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	if err := proto.Expect(c, proto.TypeTransferDone, &done); err != nil || !done.SIGPIPE || len(done.Errors) > 0 {
		t.Errorf("lcat: done %+v, %v", done, err)
	}
	_ = c.Close()
	<-results

	inR, inW := pipe(t)
	outR, outW = pipe(t)
	p = proto.TransferPass{Op: proto.OpWrite, Paths: []string{"t"}, Tool: "ltee", SIGPIPE: true}
	c, reply, err = proto.PassTransfer(t.Context(), b.path, p, inR, outW)
	if err != nil || !reply.OK {
		t.Fatalf("pass: %+v, %v", reply, err)
	}
	_ = inR.Close()
	_ = outW.Close()
	_ = outR.Close()
	go func() { _, _ = io.WriteString(inW, "data\n") }()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	if err := proto.Expect(c, proto.TypeTransferDone, &done); err != nil || !done.SIGPIPE {
		t.Errorf("ltee: done %+v, %v", done, err)
	}
	_ = c.Close()
	if r := <-results; r.err == nil || !strings.Contains(r.err.Error(), "killed by SIGPIPE") {
		t.Errorf("client: %v, want the file reported incomplete", r.err)
	}
}

// ltee whose stdout reader goes away, where that is an error: reported,
// and the files still get everything.
func TestPassLteeBrokenStdout(t *testing.T) {
	dir := t.TempDir()
	serve, results := realClient(t, dir)
	b := startBroker(t, serve)
	data := text(1 << 20)
	inR, inW := pipe(t)
	outR, outW := pipe(t)
	_ = outR.Close()
	feed(inW, data)
	var errb bytes.Buffer
	code := tee.Remote(t.Context(), b.path, []string{"f"}, false, inR, outW, &errb)
	if code != 1 || errb.String() != "ltee: standard output: write /dev/stdout: broken pipe\n" {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	if r := <-results; r.err != nil {
		t.Errorf("client: %v", r.err)
	}
	if got := readFile(t, dir, "f"); got != data {
		t.Errorf("f: %d bytes, want %d", len(got), len(data))
	}
	counts(t, b, 1, 0)
}

// What reshd does not take over stays with the tool, through the relay: a
// terminal to read, a socket, a writer that is no file. A terminal to write
// is taken over.
func TestPassFallback(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a", "A\n")
	serve, _ := realClient(t, dir)
	b := startBroker(t, serve)

	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	var errb bytes.Buffer
	if code := cat.Remote(t.Context(), b.path, []string{"a", "a"}, nil, tty, &errb); code != 0 {
		t.Fatalf("lcat to a terminal: exit %d, %q", code, errb.String())
	}
	_ = ptmx.SetReadDeadline(time.Now().Add(testTimeout))
	got := make([]byte, 6)
	if _, err := io.ReadFull(ptmx, got); err != nil || string(got) != "A\r\nA\r\n" {
		t.Errorf("terminal got %q, %v", got, err)
	}
	counts(t, b, 2, 0)

	// ltee reading a terminal: the user types a line, then ^D.
	if _, err := io.WriteString(ptmx, "typed\n\x04"); err != nil {
		t.Fatal(err)
	}
	_, outW := pipe(t)
	if code := tee.Remote(t.Context(), b.path, []string{"from-tty"}, false, tty, outW, &errb); code != 0 {
		t.Errorf("ltee from a terminal: exit %d, %q", code, errb.String())
	}
	if got := readFile(t, dir, "from-tty"); got != "typed\n" {
		t.Errorf("from-tty: %q", got)
	}
	counts(t, b, 2, 1)

	// A socket.
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	s0, s1 := os.NewFile(uintptr(fds[0]), "s0"), os.NewFile(uintptr(fds[1]), "s1")
	defer s1.Close()
	out := drain(s1)
	if code := cat.Remote(t.Context(), b.path, []string{"a"}, nil, s0, &errb); code != 0 {
		t.Errorf("lcat to a socket: exit %d, %q", code, errb.String())
	}
	_ = s0.Close()
	if got := <-out; string(got) != "A\n" {
		t.Errorf("socket got %q", got)
	}
	counts(t, b, 2, 2)

	// Not a file.
	var buf bytes.Buffer
	if code := cat.Remote(t.Context(), b.path, []string{"a"}, nil, &buf, &errb); code != 0 || buf.String() != "A\n" {
		t.Errorf("lcat to a buffer: exit %d, %q", code, buf.String())
	}
	counts(t, b, 2, 3)
}

// Many passed transfers at once.
func TestPassManyAtOnce(t *testing.T) {
	dir := t.TempDir()
	data := text(1 << 20)
	writeFile(t, dir, "src", data)
	serve, _ := realClient(t, dir)
	b := startBroker(t, serve)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// lcat src | ltee copyI > pipe
			mid, midW := pipe(t)
			outR, outW := pipe(t)
			got := drain(outR)
			lcat := make(chan int, 1)
			go func() {
				lcat <- cat.Remote(context.Background(), b.path, []string{"src"}, nil, midW, io.Discard)
				_ = midW.Close()
			}()
			name := fmt.Sprintf("copy%d", i)
			var errb bytes.Buffer
			if code := tee.Remote(context.Background(), b.path, []string{name}, false, mid, outW, &errb); code != 0 {
				t.Errorf("ltee %s: exit %d, %q", name, code, errb.String())
			}
			_ = outW.Close()
			if code := <-lcat; code != 0 {
				t.Errorf("lcat %d: exit %d", i, code)
			}
			if out := <-got; string(out) != data {
				t.Errorf("pipeline %d: %d bytes out, want %d", i, len(out), len(data))
			}
		}()
	}
	wg.Wait()
	for i := range 8 {
		if got := readFile(t, dir, fmt.Sprintf("copy%d", i)); got != data {
			t.Errorf("copy%d: %d bytes, want %d", i, len(got), len(data))
		}
	}
	counts(t, b, 16, 0)
}

// Closing the broker (the session ends) stops a passed transfer at once,
// even one whose client stalls; the tool gets no TransferDone.
func TestPassBrokerClose(t *testing.T) {
	b := startBroker(t, func(st *yamux.Stream) {
		var open proto.TransferOpen
		_ = proto.Expect(st, proto.TypeTransferOpen, &open)
		_ = proto.WriteMessage(st, proto.TypeTransferReply, proto.TransferReply{OK: true, Size: -1})
		_, _ = io.Copy(io.Discard, st) // and never sends the file
	})
	outR, outW := pipe(t)
	p := proto.TransferPass{Op: proto.OpRead, Paths: []string{"f"}, Tool: "lcat"}
	c, reply, err := proto.PassTransfer(t.Context(), b.path, p, outW)
	if err != nil || !reply.OK {
		t.Fatalf("pass: %+v, %v", reply, err)
	}
	defer c.Close()
	_ = outW.Close()
	b.close()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	var done proto.TransferDone
	if err := proto.Expect(c, proto.TypeTransferDone, &done); !errors.Is(err, io.EOF) {
		t.Errorf("tool got %+v, %v; want the end of the connection", done, err)
	} else if msg := proto.DescribeDone(err); msg != "the resh session ended before the transfer did" {
		t.Errorf("lcat would say %q", msg)
	}
	_ = outR.SetReadDeadline(time.Now().Add(testTimeout))
	if b, err := io.ReadAll(outR); err != nil || len(b) > 0 {
		t.Errorf("stdout: %q, %v; want its end", b, err)
	}
}

// A client that does not take chunks (an older resh) gets a passed write's
// data raw, and its result reaches ltee.
func TestPassOlderClient(t *testing.T) {
	got := make(chan string, 1)
	b := startBroker(t, func(st *yamux.Stream) {
		var open proto.TransferOpen
		if err := proto.Expect(st, proto.TypeTransferOpen, &open); err != nil {
			return
		}
		_ = proto.WriteMessage(st, proto.TypeTransferReply, proto.TransferReply{OK: true})
		data, _ := io.ReadAll(st)
		got <- string(data)
		_ = proto.WriteMessage(st, proto.TypeTransferResult, proto.TransferResult{Error: "f: disk full", Bytes: 1})
	})
	inR, inW := pipe(t)
	outR, outW := pipe(t)
	out := drain(outR)
	data := text(1 << 20)
	feed(inW, data)
	var errb bytes.Buffer
	code := tee.Remote(t.Context(), b.path, []string{"f"}, false, inR, outW, &errb)
	_ = outW.Close()
	<-out
	if code != 1 || errb.String() != "ltee: f: disk full\n" {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	if g := <-got; g != data {
		t.Errorf("client got %d bytes, want %d raw", len(g), len(data))
	}
	counts(t, b, 1, 0)
}

// ltee passed, its stdout's reader gone in the middle of a write (head -c
// 100000): the bytes that went to stdout went to the file too, and the
// client reports what came. reshd reads 256 KiB from stdin at once, so the
// reader goes in the middle of the first write to stdout, whatever the
// timing.
func TestPassSIGPIPEMidWrite(t *testing.T) {
	dir := t.TempDir()
	serve, results := realClient(t, dir)
	b := startBroker(t, serve)
	inR, inW := pipe(t)
	if _, err := unix.FcntlInt(inW.Fd(), unix.F_SETPIPE_SZ, 1<<20); err != nil {
		t.Skipf("cannot grow a pipe: %v", err)
	}
	data := text(256 << 10)
	_, err := io.WriteString(inW, data) // and no end: ltee stops on EPIPE
	require.NoError(t, err)
	outR, outW := pipe(t)

	p := proto.TransferPass{Op: proto.OpWrite, Paths: []string{"out"}, Tool: "ltee", SIGPIPE: true}
	c, reply, err := proto.PassTransfer(t.Context(), b.path, p, inR, outW)
	require.NoError(t, err)
	require.True(t, reply.OK, "reply %+v", reply)
	defer c.Close()
	_ = inR.Close()
	_ = outW.Close()
	head := make([]byte, 100000)
	_ = outR.SetReadDeadline(time.Now().Add(testTimeout))
	_, err = io.ReadFull(outR, head)
	require.NoError(t, err)
	require.Equal(t, data[:len(head)], string(head))
	_ = outR.Close() // head exits

	var done proto.TransferDone
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	require.NoError(t, proto.Expect(c, proto.TypeTransferDone, &done))
	assert.Equal(t, proto.TransferDone{SIGPIPE: true}, done)
	r := <-results
	var inc *tee.IncompleteError
	require.ErrorAs(t, r.err, &inc)
	assert.Equal(t, "ltee was killed by SIGPIPE", inc.Reason)
	got := readFile(t, dir, "out.partial")
	assert.GreaterOrEqual(t, len(got), len(head), "the file holds less than went downstream")
	assert.Less(t, len(got), len(data), "reshd went on after the broken pipe")
	assert.True(t, strings.HasPrefix(data, got), "the file is not what went to stdout")
	assert.Equal(t, int64(len(got)), inc.Bytes, "the size reported")
}
