// Package conndemocmd is the conndemo program: it pushes data through a
// connection session over a damaged path (an in-process mitm proxy) and
// checks that every byte arrived once and in order. cmd/conndemo only
// calls Run.
package conndemocmd

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"resh/connection"
	"resh/internal/cli"
	"resh/mitm"
)

type options struct {
	size      int64
	faults    mitm.Faults
	seed      int64
	chunkSize int
}

var command = cli.Command{
	Name:     "conndemo",
	Synopsis: "conndemo [-size N] [-corrupt P] [-cut P] [-drop-after N] [-seed N]",
	Summary:  "Pushes data through a connection over a damaged path (an in-process mitm) and checks it arrived intact.",
}

// parse parses the command line; done is true when conndemo should exit at
// once with code (after -h, --version or bad usage).
func parse(args []string, stdout, stderr io.Writer) (o options, code int, done bool) {
	fs := command.FlagSet()
	size := fs.String("size", "64MiB", "bytes to send (suffixes KiB, MiB, GiB)")
	fs.Float64Var(&o.faults.Corrupt, "corrupt", 1e-4, "probability per byte of replacing it")
	fs.Float64Var(&o.faults.Cut, "cut", 1e-4, "probability per byte of removing a run")
	dropAfter := fs.String("drop-after", "8MiB", "reset each TCP connection after this many bytes (0 = never)")
	fs.Int64Var(&o.seed, "seed", 1, "mitm seed")
	if code, done := command.Parse(fs, args, stdout, stderr); done {
		return o, code, true
	}
	err := check(fs, &o, *size, *dropAfter)
	if err != nil {
		return o, command.BadUsage(stderr, err), true
	}
	return o, 0, false
}

// check completes o with the sizes and checks the faults.
func check(fs *flag.FlagSet, o *options, size, dropAfter string) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	n, err := parseSize(size)
	if err != nil {
		return err
	}
	o.size = n
	if o.faults.DropAfter, err = parseSize(dropAfter); err != nil {
		return err
	}
	o.chunkSize = 128 << 10
	return o.faults.Validate()
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(s, suffix) {
			s, mult = strings.TrimSuffix(s, suffix), m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// Run is conndemo with its arguments; it returns the exit status.
func Run(args []string, stdout, stderr io.Writer) int {
	o, code, done := parse(args, stdout, stderr)
	if done {
		return code
	}
	if err := demo(o, stdout); err != nil {
		fmt.Fprintf(stderr, "conndemo: %v\n", err)
		return 1
	}
	return 0
}

func demo(o options, stdout io.Writer) error {
	srv, err := connection.Listen("tcp", "127.0.0.1:0", nil)
	if err != nil {
		return err
	}
	defer srv.Close()
	proxy, err := mitm.Start("127.0.0.1:0", mitm.Config{Target: srv.Addr().String(), Up: o.faults, Down: o.faults, Seed: o.seed})
	if err != nil {
		return err
	}
	defer proxy.Close()
	fmt.Fprintf(stdout, "server %v, damaged path %v (corrupt %g, cut %g, reset every %d bytes, seed %d)\n",
		srv.Addr(), proxy.Addr(), o.faults.Corrupt, o.faults.Cut, o.faults.DropAfter, proxy.Seed())

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := connection.Dial(ctx, "tcp", proxy.Addr().String(), nil)
	if err != nil {
		return err
	}
	acc, err := srv.Accept()
	if err != nil {
		return err
	}
	type result struct {
		sum [32]byte
		n   int64
		err error
	}
	got := make(chan result, 1)
	go func() {
		h := sha256.New()
		n, err := io.Copy(h, acc)
		var r result
		copy(r.sum[:], h.Sum(nil))
		r.n, r.err = n, err
		if err == nil {
			r.err = acc.Close()
		}
		got <- r
	}()
	start := time.Now()
	h := sha256.New()
	rng := rand.New(rand.NewPCG(uint64(o.seed), 0))
	buf := make([]byte, o.chunkSize)
	for sent := int64(0); sent < o.size; {
		n := int(min(int64(len(buf)), o.size-sent))
		for i := range n {
			buf[i] = byte(rng.Uint32())
		}
		if _, err := cl.Write(buf[:n]); err != nil {
			return err
		}
		h.Write(buf[:n])
		sent += int64(n)
	}
	if err := cl.Close(); err != nil {
		return err
	}
	r := <-got
	el := time.Since(start)
	if r.err != nil {
		return r.err
	}
	var want [32]byte
	copy(want[:], h.Sum(nil))
	if r.n != o.size || r.sum != want {
		return errors.New("MISMATCH: the data arrived damaged")
	}
	st := cl.Stats()
	ps := proxy.Stats()
	if os.Getenv("CONNDEMO_DEBUG") != "" {
		fmt.Fprintf(stdout, "client %+v\nserver %+v\n", st, acc.Stats())
	}
	fmt.Fprintf(stdout, "sent %d bytes in %v (%.1f MB/s): received intact, sha256 %x\n", o.size, el.Round(time.Millisecond), float64(o.size)/el.Seconds()/1e6, want[:8])
	fmt.Fprintf(stdout, "the path damaged %d bytes, cut %d runs and reset %d connections; the client resumed %d times, resent %d frames, frame size now %d\n",
		ps.Up.Corrupt+ps.Down.Corrupt, ps.Up.Cut+ps.Down.Cut, ps.Dropped, st.Resumes, st.Retransmits, st.FrameSize)
	return nil
}
