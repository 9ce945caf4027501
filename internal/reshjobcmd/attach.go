package reshjobcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"resh/client"
	"resh/connection"
	"resh/proto"
)

// follower follows one job to its end: it writes the job's stdout and
// stderr as they come, tells its states, sends reshjob's signals on, and,
// when a session is lost for good, attaches again from the bytes written
// (no gap, no duplicate) for as long as reshjob reconnects (-give-up).
type follower struct {
	o      *Options
	env    client.Env // its Connection watches outages
	sigs   <-chan os.Signal
	id     int64
	json   bool
	stdout counter
	stderr counter
	states stateLine

	mu     sync.Mutex
	lostAt time.Time // when the connection's transport was lost; zero while up
	errOut io.Writer // the current session's stderr (serialised with its notices)
	// since is when the sessions started being lost: the -give-up time
	// runs from it, until a session makes progress (a message or output).
	since time.Time
}

// newFollower returns the follower of job id (0 until submitted) from
// the offsets from.
func newFollower(o *Options, env client.Env, sigs <-chan os.Signal, from Offsets, json bool) *follower {
	f := &follower{o: o, sigs: sigs, json: json, errOut: env.Stderr}
	f.stdout = counter{w: env.Stdout, n: from.Stdout}
	f.stderr = counter{w: env.Stderr, n: from.Stderr}
	isTerm := false
	if file, ok := env.Stderr.(*os.File); ok {
		isTerm = term.IsTerminal(int(file.Fd()))
	}
	f.states = stateLine{w: f.stderrWriter, verbose: o.Verbose, term: isTerm, delay: queuedNotice}
	cfg := connection.Config{}
	if env.Connection != nil {
		cfg = *env.Connection
	}
	user := cfg.OnState
	cfg.OnState = func(ev connection.StateEvent) {
		f.mu.Lock()
		switch {
		case ev.Connected:
			f.lostAt = time.Time{}
		case f.lostAt.IsZero():
			f.lostAt = time.Now()
		}
		f.mu.Unlock()
		if user != nil {
			user(ev)
		}
	}
	env.Connection = &cfg
	f.env = env
	return f
}

// setID names the job followed.
func (f *follower) setID(id int64) {
	f.id = id
	f.states.id = id
}

// stderrWriter is where reshjob's own lines go now.
func (f *follower) stderrWriter() io.Writer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.errOut
}

// offsets are the bytes of each stream written so far.
func (f *follower) offsets() Offsets {
	return Offsets{Stdout: f.stdout.count(), Stderr: f.stderr.count()}
}

// attachHello is the Hello that attaches to the job from the offsets
// reached.
func (f *follower) attachHello() proto.Hello {
	at := f.offsets()
	return proto.Hello{Query: proto.QueryAttach, JobRequest: &proto.JobRequest{ID: f.id, Stdout: at.Stdout, Stderr: at.Stderr}}
}

// follow follows the job on s (attached, or past Submitted), and on the
// sessions that replace it, to the job's end; it returns reshjob's exit
// status.
func (f *follower) follow(ctx context.Context, s *client.Session) (int, error) {
	code, err := f.follow1(ctx, s)
	if err != nil && f.stderr.unterminated() {
		// reshjob's error goes on a line of its own.
		_, _ = io.WriteString(f.stderrWriter(), "\n")
	}
	return code, err
}

func (f *follower) follow1(ctx context.Context, s *client.Session) (int, error) {
	for {
		code, lost, err := f.session(ctx, s)
		s.Close()
		if !lost {
			return code, err
		}
		if s, err = f.reattach(ctx, err); err != nil {
			return 0, err
		}
	}
}

// controlEnd is how a session's control stream ended.
type controlEnd struct {
	verdict *proto.Verdict
	exit    proto.Exit
	err     error
	lost    bool // err is the session's end, not the server's answer
}

// session follows the job on s until its end (code), or until s is lost
// (lost, with why).
func (f *follower) session(ctx context.Context, s *client.Session) (code int, lost bool, err error) {
	at := f.offsets()
	defer func() {
		if !f.since.IsZero() && at != f.offsets() {
			f.since = time.Time{} // progress
		}
	}()
	f.mu.Lock()
	f.errOut = s.ErrOutput()
	f.mu.Unlock()
	f.stderr.setWriter(s.ErrOutput())
	outs := copyOutputs(s.Stdout, s.Stderr, &f.stdout, &f.stderr)
	// Whatever the end, the output that came is written out (the closed
	// session's streams give what they hold, then EOF) before reshjob
	// says more, or attaches again from what was written.
	defer func() {
		s.Close()
		<-outs.done
	}()
	states := make(chan proto.JobState)
	ended := make(chan controlEnd, 1)
	quit := make(chan struct{})
	defer close(quit)
	go func() { ended <- f.readControl(s.Control, states, quit) }()
	defer f.states.stop()

	var grace <-chan time.Time // runs from the first signal sent on
	var first syscall.Signal
	for {
		select {
		case st := <-states:
			f.since = time.Time{} // progress
			f.states.show(st)
			continue
		case <-f.states.notice:
			f.states.late()
			continue
		case sig := <-f.sigs:
			n, ok := forwarded(sig)
			if !ok {
				continue
			}
			if first != 0 {
				return f.leave(first), false, nil
			}
			first = n
			_ = s.Send(proto.TypeSignal, proto.Signal{Name: strings.TrimPrefix(unix.SignalName(n), "SIG")})
			t := time.NewTimer(InterruptGrace)
			defer t.Stop()
			grace = t.C
			continue
		case <-grace:
			return f.leave(first), false, nil
		case <-outs.broken:
			return client.ExitPipe, false, nil
		case <-ctx.Done():
			return 0, false, ctx.Err()
		case end := <-ended:
			if first != 0 && end.verdict != nil && end.verdict.Verdict == proto.VerdictCancelled && end.exit.Signal == 0 {
				// Cancelled after reshjob's signal: its Exit is that signal
				// (proto/spec.md §8). The server says so in the session
				// the signal came on; one re-attached after that session
				// was lost cannot know the signal and says 119.
				end.exit = proto.Exit{Signal: int(first)}
				end.verdict.Signal = int(first)
			}
			return f.ended(ctx, s, outs, end)
		}
	}
}

// ended takes the end of the control stream: the job's end, an error, or
// a lost session.
func (f *follower) ended(ctx context.Context, s *client.Session, outs *copies, end controlEnd) (int, bool, error) {
	switch {
	case end.lost:
		return 0, true, end.err
	case end.err != nil:
		return 0, false, end.err
	case end.verdict == nil:
		return 0, false, errors.New("the server sent no verdict: it ran no job (is it a reshd older than durable jobs?)")
	}
	// The output before Exit is in the streams: write it out before the
	// verdict is told.
	select {
	case <-outs.done:
	case <-ctx.Done():
		return 0, false, ctx.Err()
	}
	if outs.isBroken() {
		return client.ExitPipe, false, nil
	}
	if f.stderr.unterminated() {
		// The verdict line goes on a line of its own.
		_, _ = io.WriteString(s.ErrOutput(), "\n")
	}
	code, err := report(f.json, *end.verdict, end.exit, f.env.Stdout, s.ErrOutput())
	return code, false, err
}

// readControl reads the control stream until Exit, passing JobStates on
// (until quit), keeping the Verdict that comes before Exit.
func (f *follower) readControl(control io.Reader, states chan<- proto.JobState, quit <-chan struct{}) controlEnd {
	var end controlEnd
	for {
		t, body, err := proto.ReadMessage(control)
		if errors.Is(err, proto.ErrTooLong) {
			end.err = fmt.Errorf("protocol error: %w", err)
			return end
		}
		if err != nil {
			end.err, end.lost = err, true
			return end
		}
		switch t {
		case proto.TypeJobState:
			var st proto.JobState
			if err := proto.Decode(body, &st); err != nil {
				end.err = fmt.Errorf("protocol error: %w", err)
				return end
			}
			select {
			case states <- st:
			case <-quit:
				end.err, end.lost = io.EOF, true
				return end
			}
		case proto.TypeVerdict:
			end.verdict = &proto.Verdict{}
			if err := proto.Decode(body, end.verdict); err != nil {
				end.err = fmt.Errorf("protocol error: %w", err)
				return end
			}
		case proto.TypeExit:
			if err := proto.Decode(body, &end.exit); err != nil {
				end.err = fmt.Errorf("protocol error: %w", err)
			}
			return end
		case proto.TypeError:
			end.err = remoteError(f.o, body)
			return end
		case proto.TypeStarted:
			end.err = errOlder(&f.o.Client)
			return end
		}
	}
}

// leave ends reshjob without waiting for the job's end any more (a second
// signal, or the first's grace over): the server was asked to cancel it.
// It returns 128+N for the first signal N.
func (f *follower) leave(first syscall.Signal) int {
	fmt.Fprintf(f.stderrWriter(), "reshjob: %s: job %d is being cancelled; not waiting for its end\n", unix.SignalName(first), f.id)
	return 128 + int(first)
}

// reattach opens a new session attached to the job from the bytes
// written, once the last one was lost for good (why), trying again for
// the -give-up time from the loss (from the first loss, when the sessions
// since made no progress); a signal reshjob forwards ends the tries. It
// returns a lostError when it cannot.
func (f *follower) reattach(ctx context.Context, why error) (*client.Session, error) {
	f.mu.Lock()
	if f.since.IsZero() {
		f.since = f.lostAt
	}
	f.lostAt = time.Time{}
	f.mu.Unlock()
	if f.since.IsZero() {
		f.since = time.Now()
	}
	deadline := f.since.Add(f.giveUp())
	if f.o.Verbose {
		fmt.Fprintf(f.stderrWriter(), "reshjob: job %d: session lost (%v); attaching again from %s\n", f.id, why, f.offsets().String())
	}
	wait := 100 * time.Millisecond
	for {
		dctx, cancel := context.WithDeadline(ctx, deadline)
		if time.Until(deadline) <= 0 {
			// One try at least, within the connect timeout.
			dctx, cancel = context.WithCancel(ctx)
		}
		s, err := open(dctx, &f.o.Client, f.env, f.sigs)
		cancel()
		if err == nil {
			if _, err = sendQuery(s, f.attachHello(), nil, nil); err == nil {
				return s, nil
			}
			s.Close()
		}
		var intr interruptError
		switch {
		case errors.As(err, &intr):
			return nil, f.lostError(intr.sig.String() + " while reconnecting")
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case time.Until(deadline) <= 0:
			return nil, f.lostError("")
		}
		t := time.NewTimer(min(wait, time.Until(deadline)))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// giveUp is -give-up, else client.DefaultGiveUp.
func (f *follower) giveUp() time.Duration {
	if f.o.Client.GiveUp > 0 {
		return f.o.Client.GiveUp
	}
	return client.DefaultGiveUp
}

// lostError says that reshjob cannot reach the host any more, and how to
// follow the job later from where it stopped.
func (f *follower) lostError(cause string) error {
	what := "lost the connection to " + f.o.Client.Host
	if cause != "" {
		what = cause + ": " + what
	}
	return fmt.Errorf("%s; job %d goes on: %s", what, f.id, f.attachCommand())
}

// attachCommand is the command line that attaches to the job from the
// offsets reached, with the options that reach the host.
func (f *follower) attachCommand() string {
	c := &f.o.Client
	args := []string{"reshjob"}
	if c.Port != client.DefaultPort && c.Port != 0 {
		args = append(args, "-p", fmt.Sprint(c.Port))
	}
	if c.Identity != "" {
		args = append(args, "-i", c.Identity)
	}
	if c.Insecure {
		args = append(args, "-insecure")
	}
	host := c.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	at := f.offsets()
	return strings.Join(append(args, host, "attach", "-from", fmt.Sprintf("%d:%d", at.Stdout, at.Stderr), fmt.Sprint(f.id)), " ")
}

// attach is reshjob HOST attach.
func attach(ctx context.Context, o *Options, env client.Env) (int, error) {
	a := &o.Attach
	sigs, stopCatching := catchSignals(env)
	defer stopCatching()
	f := newFollower(o, env, sigs, a.From, a.JSON)
	f.setID(a.ID)
	s, err := open(ctx, &o.Client, f.env, sigs)
	if err != nil {
		return 0, err
	}
	if _, err := sendQuery(s, f.attachHello(), nil, nil); err != nil {
		s.Close()
		return 0, err
	}
	return f.follow(ctx, s)
}
