package main

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

	"go.uber.org/goleak"

	"resh/mitm"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestBadFlags checks that bad command lines print one usage line and exit
// with status 2, without touching the network.
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
		code := runContext(context.Background(), args, &stdout, &stderr)
		msg := stderr.String()
		if code != 2 || stdout.Len() != 0 || !strings.HasPrefix(msg, "mitm: ") ||
			strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "usage: mitm -listen") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, stdout.String(), msg)
		}
	}
}

func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := runContext(context.Background(), []string{"-h"}, &stdout, &stderr); code != 0 ||
		!strings.Contains(stdout.String(), "-drop-after N") || !strings.Contains(stdout.String(), "-tamper") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}

// TestParse checks how flags map to the configuration.
func TestParse(t *testing.T) {
	o, err := parse([]string{"-listen", ":1", "-target", "h:2", "-dir", "up", "-corrupt", "0.5", "-cut", "0.25",
		"-dup", "0.125", "-inject", "1", "-tamper", "0.0625", "-drop-after", "1m", "-drop-every", "2s", "-refuse", "3",
		"-stall-after", "4k", "-latency", "5ms", "-jitter", "6ms", "-bandwidth", "7000", "-slice", "8",
		"-dump", "-seed", "9", "-log", "f.log"})
	if err != nil {
		t.Fatal(err)
	}
	want := mitm.Faults{Corrupt: 0.5, Cut: 0.25, Dup: 0.125, Inject: 1, Tamper: 0.0625, DropAfter: 1 << 20, DropEvery: 2 * time.Second,
		StallAfter: 4 << 10, Latency: 5 * time.Millisecond, Jitter: 6 * time.Millisecond, Bandwidth: 7000, Slice: 8}
	if o.listen != ":1" || o.cfg.Target != "h:2" || o.cfg.Up != want || o.cfg.Down != (mitm.Faults{}) ||
		o.cfg.Refuse != 3 || o.cfg.Seed != 9 || !o.dump || o.logPath != "f.log" {
		t.Fatalf("got %+v", o)
	}
	o, err = parse([]string{"-listen", ":1", "-target", "h:2", "-cut", "0.1"})
	if err != nil || o.cfg.Up.Cut != 0.1 || o.cfg.Down.Cut != 0.1 {
		t.Fatalf("-dir both: %+v, %v", o, err)
	}
	o, err = parse([]string{"-listen", ":1", "-target", "h:2", "-dir", "down", "-slice", "2"})
	if err != nil || o.cfg.Up.Slice != 0 || o.cfg.Down.Slice != 2 {
		t.Fatalf("-dir down: %+v, %v", o, err)
	}
	o, err = parse([]string{"-listen", ":1", "-target", "h:2", "-dir", "down", "-tamper", "0.01"})
	if err != nil || o.cfg.Up.Tamper != 0 || o.cfg.Down.Tamper != 0.01 {
		t.Fatalf("-dir down -tamper: %+v, %v", o, err)
	}
}

// TestRun runs the command against a real echo server on 127.0.0.1, then
// stops it as a signal would.
func TestRun(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
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
		code <- runContext(ctx, []string{"-listen", "127.0.0.1:0", "-target", l.Addr().String(),
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
	if !strings.HasPrefix(first, prefix) {
		t.Fatalf("first line %q", first)
	}
	addr := strings.Fields(strings.TrimPrefix(first, prefix))[0]
	addr = strings.TrimSuffix(addr, ",")
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("hello"))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("echo: %q, %v", buf, err)
	}
	c.Close()
	cancel()
	var rest []string
	for l := range lines {
		rest = append(rest, l)
	}
	if got := <-code; got != 0 {
		t.Fatalf("exit %d, stderr %q", got, stderr.String())
	}
	<-srvDone
	all := strings.Join(rest, "\n")
	if !strings.Contains(all, "|hello|") || !strings.Contains(all, "mitm: closed") {
		t.Fatalf("output:\n%s", all)
	}
	log, err := os.ReadFile(logPath)
	if err != nil || !strings.Contains(string(log), `"kind":"close"`) {
		t.Fatalf("log %q, %v", log, err)
	}
}
