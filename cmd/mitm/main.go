// Command mitm is a fault-injecting man-in-the-middle TCP proxy: it sits
// between a client and a server, shows what passes and damages it on
// purpose, reproducibly (see package resh/mitm).
//
//	mitm -listen ADDR -target ADDR [flags]
//
// Run mitm -h for the flags.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"resh/mitm"
)

const usage = "usage: mitm -listen ADDR -target ADDR [-dir up|down|both] [-corrupt P] [-cut P] [-dup P] [-inject P] " +
	"[-tamper P] [-drop-after N] [-drop-every D] [-refuse N] [-stall-after N] [-latency D] [-jitter D] [-bandwidth B] [-slice N] " +
	"[-dump] [-seed N] [-log FILE]"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run runs mitm until SIGINT or SIGTERM and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runContext(ctx, args, stdout, stderr)
}

// options are the parsed command line.
type options struct {
	listen  string
	cfg     mitm.Config
	dump    bool
	logPath string
}

// size is a byte count flag: an integer with an optional k, m or g suffix
// (powers of 1024).
type size struct{ n *int64 }

func (s size) String() string {
	if s.n == nil {
		return "0"
	}
	return strconv.FormatInt(*s.n, 10)
}

func (s size) Set(v string) error {
	mult := int64(1)
	switch strings.ToLower(v[len(v)-min(1, len(v)):]) {
	case "k":
		mult = 1 << 10
	case "m":
		mult = 1 << 20
	case "g":
		mult = 1 << 30
	}
	if mult > 1 {
		v = v[:len(v)-1]
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return errors.New("not a byte count")
	}
	if n < 0 {
		return errors.New("negative")
	}
	*s.n = n * mult
	return nil
}

// parse parses the command line.
func parse(args []string) (*options, error) {
	fs := flag.NewFlagSet("mitm", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		o                  options
		f                  mitm.Faults
		direction          = "both"
		dropAfter, stallAt int64
		bandwidth, slice   int64
		refuse             int
	)
	fs.StringVar(&o.listen, "listen", "", "address to listen on, such as 127.0.0.1:9000")
	fs.StringVar(&o.cfg.Target, "target", "", "address of the server to forward to")
	fs.StringVar(&direction, "dir", direction, "direction the faults apply to: up (client to server), down or both")
	fs.Float64Var(&f.Corrupt, "corrupt", 0, "probability per byte of replacing it with another value")
	fs.Float64Var(&f.Cut, "cut", 0, "probability per byte of removing a run of 1..64 bytes starting there")
	fs.Float64Var(&f.Dup, "dup", 0, "probability per byte of repeating a run of 1..64 bytes")
	fs.Float64Var(&f.Inject, "inject", 0, "probability per byte of inserting a run of 1..64 bytes of garbage")
	fs.Float64Var(&f.Tamper, "tamper", 0, "probability per payload byte of a resh DATA frame of replacing it "+
		"and fixing the frame's CRC, so that only TLS can tell (an attacker)")
	fs.Var(size{&dropAfter}, "drop-after", "reset each connection (RST) after `N` bytes (k, m, g suffixes)")
	fs.DurationVar(&f.DropEvery, "drop-every", 0, "reset each connection after this `duration`")
	fs.IntVar(&refuse, "refuse", 0, "after a drop, refuse the next `N` connection attempts")
	fs.Var(size{&stallAt}, "stall-after", "stop forwarding after `N` bytes, keeping the connection open")
	fs.DurationVar(&f.Latency, "latency", 0, "delay data by this `duration`")
	fs.DurationVar(&f.Jitter, "jitter", 0, "add a delay uniform in [-D, +D] to the latency")
	fs.Var(size{&bandwidth}, "bandwidth", "limit each direction of each connection to `B` bytes per second")
	fs.Var(size{&slice}, "slice", "deliver data in writes of at most `N` bytes")
	fs.BoolVar(&o.dump, "dump", false, "print the traffic as a hex dump")
	fs.Int64Var(&o.cfg.Seed, "seed", 0, "seed of every decision (0 = random; the seed is printed)")
	fs.StringVar(&o.logPath, "log", "", "write one JSON line per fault and per closed connection to `FILE`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			var b strings.Builder
			b.WriteString(usage + "\n")
			fs.SetOutput(&b)
			fs.PrintDefaults()
			return nil, helpError(b.String())
		}
		return nil, errors.New(strings.TrimPrefix(err.Error(), "flag: "))
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.listen == "":
		return nil, errors.New("missing -listen")
	case o.cfg.Target == "":
		return nil, errors.New("missing -target")
	case refuse < 0:
		return nil, errors.New("negative -refuse")
	case slice > 1<<30:
		return nil, errors.New("-slice too large")
	}
	f.DropAfter, f.StallAfter, f.Bandwidth, f.Slice = dropAfter, stallAt, bandwidth, int(slice)
	if err := f.Validate(); err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "mitm: "))
	}
	o.cfg.Refuse = refuse
	switch direction {
	case "up":
		o.cfg.Up = f
	case "down":
		o.cfg.Down = f
	case "both":
		o.cfg.Up, o.cfg.Down = f, f
	default:
		return nil, fmt.Errorf("-dir %q is not up, down or both", direction)
	}
	return &o, nil
}

// helpError carries the -h text.
type helpError string

func (h helpError) Error() string { return string(h) }

// lockedWriter serializes writes from the proxy and from run.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// flushWriter buffers the log and flushes it periodically, so that a high
// fault rate does not cost a system call per line.
type flushWriter struct {
	mu   sync.Mutex
	bw   *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

func newFlushWriter(w io.Writer, every time.Duration) *flushWriter {
	f := &flushWriter{bw: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				f.mu.Lock()
				f.bw.Flush()
				f.mu.Unlock()
			case <-f.stop:
				return
			}
		}
	}()
	return f
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bw.Write(p)
}

// Close stops the flushing goroutine and flushes what is left.
func (f *flushWriter) Close() error {
	close(f.stop)
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bw.Flush()
}

// runContext runs mitm until ctx is done and returns the exit status.
func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parse(args)
	if err != nil {
		var h helpError
		if errors.As(err, &h) {
			fmt.Fprint(stdout, h)
			return 0
		}
		fmt.Fprintf(stderr, "mitm: %v; %s\n", err, usage)
		return 2
	}
	out := &lockedWriter{w: stdout}
	if o.dump {
		o.cfg.Dump = out
	}
	if o.logPath != "" {
		lf, err := os.Create(o.logPath)
		if err != nil {
			fmt.Fprintf(stderr, "mitm: %v\n", err)
			return 1
		}
		defer lf.Close()
		lw := newFlushWriter(lf, 100*time.Millisecond)
		defer lw.Close()
		o.cfg.Log = lw
	}
	p, err := mitm.Start(o.listen, o.cfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(out, "mitm: seed %d, listening on %s, forwarding to %s\n", p.Seed(), p.Addr(), o.cfg.Target)
	<-ctx.Done()
	start := time.Now()
	err = p.Close()
	s := p.Stats()
	fmt.Fprintf(out, "mitm: closed in %v: %d connections (%d refused, %d dropped); "+
		"up %d bytes in, %d out, %d corrupt, %d cut, %d dup, %d inject, %d tamper; "+
		"down %d bytes in, %d out, %d corrupt, %d cut, %d dup, %d inject, %d tamper\n",
		time.Since(start).Round(time.Millisecond), s.Accepted, s.Refused, s.Dropped,
		s.Up.In, s.Up.Out, s.Up.Corrupt, s.Up.Cut, s.Up.Dup, s.Up.Inject, s.Up.Tamper,
		s.Down.In, s.Down.Out, s.Down.Corrupt, s.Down.Cut, s.Down.Dup, s.Down.Inject, s.Down.Tamper)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
