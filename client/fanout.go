package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"resh/proto"
)

// maxLine bounds what -all keeps of one executor's unfinished output line:
// a longer line is cut there, as if it ended with a newline.
const maxLine = 1 << 20

// fanOut runs the command on every executor of the master that is up or
// full, at once (-all), as pdsh does: each output line prefixed with
// "NAME: ", stdout and stderr apart, no stdin (each command reads EOF at
// once). Each executor gets a session of its own, as resh -on NAME would
// run it (same options, keys and host pinning, lcat and ltee served). The
// exit status is the largest of the sessions' (255 for one that could not
// run or was lost), and one line on stderr names those that failed.
func (r *runner) fanOut(ctx context.Context) (int, error) {
	list, err := r.queryExecutors(ctx)
	if err != nil {
		return 0, err
	}
	var names []string
	for _, e := range list {
		if e.State == proto.StateUp || e.State == proto.StateFull {
			names = append(names, e.Name)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) == 0 {
		return 0, fmt.Errorf("no executor is up on %s", r.o.Host)
	}
	r.debugf(1, "running on %s", strings.Join(names, ", "))

	stdout, stderr := &lineSink{w: r.env.Stdout}, &lineSink{w: r.stderr}
	sigs, stopSignals := r.fanSignals(len(names))
	results := make([]fanResult, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, errOut := stdout.prefixed(name), stderr.prefixed(name)
			o := *r.o
			o.All, o.On = false, name
			child := &runner{o: &o, stderr: &syncWriter{w: errOut}, start: r.start, env: Env{
				Stdin: strings.NewReader(""), Stdout: out, Stderr: errOut,
				Environ: r.env.Environ, Dir: r.env.Dir, Signals: sigs[i],
				Connection: r.env.Connection, StartTimeout: r.env.StartTimeout,
			}}
			code, err := child.run(ctx)
			out.flush()
			errOut.flush()
			results[i] = fanResult{name: name, code: code, err: err}
		}()
	}
	wg.Wait()
	stopSignals()

	code, summary := summarize(results)
	if summary != "" {
		r.stderr.printf("resh: %s\n", summary)
	}
	return code, nil
}

// fanResult is how one executor's session ended.
type fanResult struct {
	name string
	code int
	err  error // resh's own failure (the session could not run, was lost)
}

// summarize returns the exit status of -all, the largest of the results'
// (255 for an error), and when some failed "failed on A (exit 3), B
// (executor B lost)".
func summarize(results []fanResult) (int, string) {
	code := 0
	var failed []string
	for _, res := range results {
		c, why := res.code, fmt.Sprintf("exit %d", res.code)
		if res.err != nil {
			c, why = ExitFailure, res.err.Error()
		}
		if c == 0 {
			continue
		}
		code = max(code, c)
		failed = append(failed, fmt.Sprintf("%s (%s)", res.name, why))
	}
	if len(failed) == 0 {
		return 0, ""
	}
	return code, "failed on " + strings.Join(failed, ", ")
}

// fanSignals returns the signals each of n sessions receives, and what
// stops passing them: with Env's Signals (tests), every signal passed to
// every session; otherwise nil channels, each session catching the
// process's signals itself (each gets every one).
func (r *runner) fanSignals(n int) ([]<-chan os.Signal, func()) {
	chans := make([]<-chan os.Signal, n)
	if r.env.Signals == nil {
		return chans, func() {}
	}
	outs := make([]chan os.Signal, n)
	for i := range outs {
		outs[i] = make(chan os.Signal, 8)
		chans[i] = outs[i]
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case s := <-r.env.Signals:
				for _, c := range outs {
					select {
					case c <- s:
					default:
					}
				}
			}
		}
	}()
	return chans, func() {
		close(quit)
		<-done
	}
}

// lineSink is one of resh's outputs shared by the sessions of -all. It is
// written whole lines only, each write under its lock, so that the lines
// of different executors never mix.
type lineSink struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *lineSink) write(b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.w.Write(b)
	return err
}

// prefixed returns the writer for one executor's output on s: its lines,
// each prefixed with "NAME: ".
func (s *lineSink) prefixed(name string) *prefixWriter {
	return &prefixWriter{sink: s, prefix: []byte(name + ": ")}
}

// prefixWriter keeps one executor's output until each newline, and writes
// the complete lines to its sink with the prefix before each. flush writes
// an unfinished last line, with a newline added.
type prefixWriter struct {
	sink   *lineSink
	prefix []byte
	mu     sync.Mutex
	buf    []byte // the unfinished line
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []byte
	rest := b
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		out = append(append(append(out, p.prefix...), p.buf...), rest[:i+1]...)
		p.buf, rest = p.buf[:0], rest[i+1:]
	}
	p.buf = append(p.buf, rest...)
	if len(p.buf) >= maxLine {
		out = append(append(append(out, p.prefix...), p.buf...), '\n')
		p.buf = p.buf[:0]
	}
	if len(out) > 0 {
		if err := p.sink.write(out); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// flush writes the unfinished last line, if any, ending it.
func (p *prefixWriter) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) == 0 {
		return
	}
	_ = p.sink.write(append(append(append([]byte(nil), p.prefix...), p.buf...), '\n'))
	p.buf = p.buf[:0]
}
