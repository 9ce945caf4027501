package mitmcmd

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"resh/mitm"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestBadFlags checks that bad command lines print one line saying what is
// wrong and the usage, and exit with status 2, without touching the network.
func TestBadFlags(t *testing.T) {
	ok := []string{"-listen", "127.0.0.1:0", "-target", "127.0.0.1:1"}
	for _, args := range [][]string{
		{},
		{"-listen", "127.0.0.1:0"},
		{"-target", "127.0.0.1:1"},
		append(ok, "-corrupt", "2"),
		append(ok, "-cut", "-0.1"),
		append(ok, "-dup", "x"),
		append(ok, "-inject", "NaN"),
		append(ok, "-tamper", "1.5"),
		append(ok, "-tamper", "often"),
		append(ok, "-dir", "sideways"),
		append(ok, "-latency", "-1s"),
		append(ok, "-jitter", "soon"),
		append(ok, "-drop-every", "-5ms"),
		append(ok, "-drop-after", "-1"),
		append(ok, "-stall-after", "lots"),
		append(ok, "-bandwidth", "1x"),
		append(ok, "-slice", "-3"),
		append(ok, "-refuse", "-1"),
		append(ok, "-seed", "abc"),
		append(ok, "-nosuchflag"),
		append(ok, "extra"),
	} {
		var stdout, stderr bytes.Buffer
		code := Run(context.Background(), args, &stdout, &stderr)
		assert.Equal(t, 2, code, args)
		assert.Empty(t, stdout.String(), args)
		lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
		if assert.Len(t, lines, 2, "%q: %q", args, stderr.String()) {
			assert.True(t, strings.HasPrefix(lines[0], "mitm: "), lines[0])
			assert.Equal(t, "usage: "+Command.Synopsis, lines[1])
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	for _, h := range []string{"-h", "--help"} {
		var stdout, stderr bytes.Buffer
		assert.Equal(t, 0, Run(context.Background(), []string{h}, &stdout, &stderr), h)
		assert.Empty(t, stderr.String())
		assert.Contains(t, stdout.String(), "-drop-after N")
		assert.Contains(t, stdout.String(), "-tamper")
		assert.Contains(t, stdout.String(), "--version")
	}
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 0, Run(context.Background(), []string{"--version"}, &stdout, &stderr))
	assert.Regexp(t, `^mitm \S+ \(commit [^)]+\)\n$`, stdout.String())
}

// TestParse checks how flags map to the configuration.
func TestParse(t *testing.T) {
	parseOK := func(args ...string) *options {
		t.Helper()
		var stderr bytes.Buffer
		o, code := parse(args, io.Discard, &stderr)
		require.NotNil(t, o, "exit %d: %s", code, stderr.String())
		return o
	}
	o := parseOK("-listen", ":1", "-target", "h:2", "-dir", "up", "-corrupt", "0.5", "-cut", "0.25",
		"-dup", "0.125", "-inject", "1", "-tamper", "0.0625", "-drop-after", "1m", "-drop-every", "2s", "-refuse", "3",
		"-stall-after", "4k", "-latency", "5ms", "-jitter", "6ms", "-bandwidth", "7000", "-slice", "8",
		"-dump", "-seed", "9", "-log", "f.log")
	want := mitm.Faults{Corrupt: 0.5, Cut: 0.25, Dup: 0.125, Inject: 1, Tamper: 0.0625, DropAfter: 1 << 20, DropEvery: 2 * time.Second,
		StallAfter: 4 << 10, Latency: 5 * time.Millisecond, Jitter: 6 * time.Millisecond, Bandwidth: 7000, Slice: 8}
	assert.Equal(t, ":1", o.listen)
	assert.Equal(t, "h:2", o.cfg.Target)
	assert.Equal(t, want, o.cfg.Up)
	assert.Equal(t, mitm.Faults{}, o.cfg.Down)
	assert.Equal(t, 3, o.cfg.Refuse)
	assert.Equal(t, int64(9), o.cfg.Seed)
	assert.True(t, o.dump)
	assert.Equal(t, "f.log", o.logPath)

	o = parseOK("-listen", ":1", "-target", "h:2", "-cut", "0.1")
	assert.Equal(t, 0.1, o.cfg.Up.Cut, "-dir both")
	assert.Equal(t, 0.1, o.cfg.Down.Cut, "-dir both")
	o = parseOK("-listen", ":1", "-target", "h:2", "-dir", "down", "-slice", "2")
	assert.Equal(t, 0, o.cfg.Up.Slice, "-dir down")
	assert.Equal(t, 2, o.cfg.Down.Slice, "-dir down")
	o = parseOK("-listen", ":1", "-target", "h:2", "-dir", "down", "-tamper", "0.01")
	assert.Equal(t, 0.0, o.cfg.Up.Tamper, "-dir down -tamper")
	assert.Equal(t, 0.01, o.cfg.Down.Tamper, "-dir down -tamper")
}

// TestRun runs the command against a real echo server on 127.0.0.1, then
// stops it as a signal would.
func TestRun(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	srvDone := make(chan struct{})
	go func() {
		defer close(srvDone)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	logPath := filepath.Join(t.TempDir(), "mitm.log")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	code := make(chan int, 1)
	go func() {
		code <- Run(ctx, []string{"-listen", "127.0.0.1:0", "-target", l.Addr().String(),
			"-seed", "42", "-log", logPath, "-dump"}, pw, &stderr)
		pw.Close()
	}()
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	first := <-lines
	const prefix = "mitm: seed 42, listening on "
	require.True(t, strings.HasPrefix(first, prefix), "first line %q", first)
	addr := strings.Fields(strings.TrimPrefix(first, prefix))[0]
	addr = strings.TrimSuffix(addr, ",")
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	require.NoError(t, err)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("hello"))
	buf := make([]byte, 5)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err, "echo")
	assert.Equal(t, "hello", string(buf))
	c.Close()
	cancel()
	var rest []string
	for l := range lines {
		rest = append(rest, l)
	}
	require.Equal(t, 0, <-code, "stderr %q", stderr.String())
	<-srvDone
	all := strings.Join(rest, "\n")
	assert.Contains(t, all, "|hello|")
	assert.Contains(t, all, "mitm: closed")
	log, err := os.ReadFile(logPath)
	require.NoError(t, err)
	assert.Contains(t, string(log), `"kind":"close"`)
}
