// Package mitmcmd is the mitm program: its command line and its run, over
// the proxy of package resh/mitm. cmd/mitm only calls Main.
//
// It is apart from package mitm, the proxy that tests embed, as
// internal/reshdcmd is apart from server: flags, files and exit codes are
// the program's business.
package mitmcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"resh/internal/cli"
	"resh/mitm"
)

// Command is mitm's command line, for -h and bad usage.
var Command = cli.Command{
	Name: "mitm",
	Synopsis: "mitm -listen ADDR -target ADDR [-dir up|down|both] [-corrupt P] [-cut P] [-dup P] [-inject P] " +
		"[-tamper P] [-drop-after N] [-drop-every D] [-refuse N] [-stall-after N] [-latency D] [-jitter D] [-bandwidth B] [-slice N] " +
		"[-dump] [-seed N] [-log FILE]",
	Summary: "A fault-injecting man-in-the-middle TCP proxy: forwards each connection to -target, shows\n" +
		"what passes and damages it on purpose, reproducibly (every decision follows from -seed).",
}

// Main runs mitm with os.Args until SIGINT or SIGTERM and returns the exit
// status.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, args[1:], os.Stdout, os.Stderr)
}

// options are the parsed command line.
type options struct {
	listen  string
	cfg     mitm.Config
	dump    bool
	logPath string
}

// parse parses the command line.
func parse(args []string, stdout, stderr io.Writer) (*options, int) {
	fs := Command.FlagSet()
	var (
		o options
		r = rawFlags{direction: "both"}
		f = &r.faults
	)
	fs.StringVar(&o.listen, "listen", "", "address to listen on, such as 127.0.0.1:9000")
	fs.StringVar(&o.cfg.Target, "target", "", "address of the server to forward to")
	fs.StringVar(&r.direction, "dir", r.direction, "direction the faults apply to: up (client to server), down or both")
	fs.Float64Var(&f.Corrupt, "corrupt", 0, "probability per byte of replacing it with another value")
	fs.Float64Var(&f.Cut, "cut", 0, "probability per byte of removing a run of 1..64 bytes starting there")
	fs.Float64Var(&f.Dup, "dup", 0, "probability per byte of repeating a run of 1..64 bytes")
	fs.Float64Var(&f.Inject, "inject", 0, "probability per byte of inserting a run of 1..64 bytes of garbage")
	fs.Float64Var(&f.Tamper, "tamper", 0, "probability per payload byte of a resh DATA frame of replacing it "+
		"and fixing the frame's CRC, so that only TLS can tell (an attacker)")
	fs.Var(size{&r.dropAfter}, "drop-after", "reset each connection (RST) after `N` bytes (k, m, g suffixes)")
	fs.DurationVar(&f.DropEvery, "drop-every", 0, "reset each connection after this `duration`")
	fs.IntVar(&r.refuse, "refuse", 0, "after a drop, refuse the next `N` connection attempts")
	fs.Var(size{&r.stallAt}, "stall-after", "stop forwarding after `N` bytes, keeping the connection open")
	fs.DurationVar(&f.Latency, "latency", 0, "delay data by this `duration`")
	fs.DurationVar(&f.Jitter, "jitter", 0, "add a delay uniform in [-D, +D] to the latency")
	fs.Var(size{&r.bandwidth}, "bandwidth", "limit each direction of each connection to `B` bytes per second")
	fs.Var(size{&r.slice}, "slice", "deliver data in writes of at most `N` bytes")
	fs.BoolVar(&o.dump, "dump", false, "print the traffic as a hex dump")
	fs.Int64Var(&o.cfg.Seed, "seed", 0, "seed of every decision (0 = random; the seed is printed)")
	fs.StringVar(&o.logPath, "log", "", "write one JSON line per fault and per closed connection to `FILE`")
	if code, done := Command.Parse(fs, args, stdout, stderr); done {
		return nil, code
	}
	if fs.NArg() > 0 {
		return nil, Command.BadUsage(stderr, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if err := r.complete(&o); err != nil {
		return nil, Command.BadUsage(stderr, err)
	}
	return &o, 0
}

// rawFlags are the flags that need checking before they make a
// configuration.
type rawFlags struct {
	faults                               mitm.Faults
	direction                            string
	dropAfter, stallAt, bandwidth, slice int64
	refuse                               int
}

// complete checks the flags and completes o's configuration.
func (r rawFlags) complete(o *options) error {
	f := r.faults
	switch {
	case o.listen == "":
		return errors.New("missing -listen")
	case o.cfg.Target == "":
		return errors.New("missing -target")
	case r.refuse < 0:
		return errors.New("negative -refuse")
	case r.slice > 1<<30:
		return errors.New("-slice too large")
	}
	f.DropAfter, f.StallAfter, f.Bandwidth, f.Slice = r.dropAfter, r.stallAt, r.bandwidth, int(r.slice)
	if err := f.Validate(); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "mitm: "))
	}
	o.cfg.Refuse = r.refuse
	switch r.direction {
	case "up":
		o.cfg.Up = f
	case "down":
		o.cfg.Down = f
	case "both":
		o.cfg.Up, o.cfg.Down = f, f
	default:
		return fmt.Errorf("-dir %q is not up, down or both", r.direction)
	}
	return nil
}

// Run runs mitm with its arguments until ctx is done and returns the exit status.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, code := parse(args, stdout, stderr)
	if o == nil {
		return code
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
