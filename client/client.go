// Package client is resh's logic: it connects to reshd, runs one command or
// a login shell there with the local stdin, stdout and stderr (or the local
// terminal, in raw mode, for a pseudo-terminal), forwards signals and
// terminal resizes, and serves the client's files to lcat and ltee run in
// the session. The protocol is ../proto/spec.md.
//
// A run is split as x/crypto/ssh splits a session: dial.go sets up the
// connection, session.go opens the streams and starts the command,
// streams.go pumps stdin, stdout and stderr, signals.go forwards signals,
// escape.go reads the escapes typed at a terminal, terminal.go handles the
// local terminal, ending.go waits for the end and closes, verbose.go says
// what happens (-v, -q). Through a master: queue.go shows the wait for a
// free executor, executors.go lists the executors (-executors), fanout.go
// runs a command on all of them (-all).
package client

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/yamux"

	"resh/connection"
	"resh/internal/readerr"
	"resh/proto"
)

// Timeouts of resh itself.
const (
	// DialTimeout bounds connecting to reshd unless -o ConnectTimeout
	// says otherwise.
	DialTimeout = 30 * time.Second
	// StartTimeout bounds the wait for Started after Hello.
	StartTimeout = 30 * time.Second
	// drainTimeout bounds the final Close's wait for acknowledgements.
	drainTimeout = time.Second
)

// ExitFailure is resh's exit status for its own failures (cannot connect,
// refused, protocol error, session lost, "~." escape), as ssh's.
const ExitFailure = 255

// ExitPipe (128 + SIGPIPE) is resh's exit status when the reader of its
// stdout or stderr went away, as a local program killed by its write to a
// broken pipe: the server was told, and the command's writes to that
// output fail from then on.
const ExitPipe = 128 + int(syscall.SIGPIPE)

// pipeGrace bounds the wait for the command's end once its output's reader
// is gone (it usually dies at its next write); the end of the session then
// hangs it up.
const pipeGrace = 2 * time.Second

// Env is the world Run works in. Zero fields take the process's own.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Environ is the environment; TERM, LANG and LC_* are sent, HOME
	// locates ~/.ssh/config. Default os.Environ().
	Environ []string
	// Dir is the working directory lcat and ltee paths are relative to.
	// Default os.Getwd().
	Dir string
	// Signals, if not nil, replaces the signals resh receives (tests);
	// otherwise SIGINT, SIGTERM, SIGHUP, SIGQUIT and SIGWINCH are caught.
	Signals <-chan os.Signal
	// Connection, if not nil, is the base of the connection's Config.
	Connection *connection.Config
	// StartTimeout, if not zero, replaces StartTimeout (tests).
	StartTimeout time.Duration
}

// Run runs the session described by o and returns resh's exit status: the
// remote command's code, 128+signal if a signal killed it, or ExitFailure
// after printing one line "resh: <cause>" on stderr. ctx bounds dialling
// and, cancelled, ends the session. Run first completes o from the ssh
// configuration (see Options.ConfigFile).
func Run(ctx context.Context, o *Options, env Env) int {
	if env.Stdin == nil {
		env.Stdin = os.Stdin
	}
	if o.NullStdin {
		env.Stdin = strings.NewReader("")
	}
	if env.Stdout == nil {
		env.Stdout = os.Stdout
	}
	if env.Stderr == nil {
		env.Stderr = os.Stderr
	}
	if env.Environ == nil {
		env.Environ = os.Environ()
	}
	r := &runner{o: o, env: env, stderr: &syncWriter{w: env.Stderr}, start: time.Now()}
	if err := o.resolve(lookupEnv(env.Environ, "HOME"), func(format string, args ...any) { r.debugf(1, format, args...) }); err != nil {
		r.stderr.printf("resh: %v\n", err)
		return ExitFailure
	}
	var code int
	var err error
	switch {
	case o.ListExecutors:
		code, err = r.listExecutors(ctx)
	case o.All:
		code, err = r.fanOut(ctx)
	default:
		code, err = r.run(ctx)
	}
	if err != nil {
		// The terminal is restored by now.
		r.stderr.printf("resh: %v\n", err)
		return ExitFailure
	}
	return code
}

// runner is one run of resh.
type runner struct {
	o      *Options
	env    Env
	stderr *syncWriter
	start  time.Time // when resh started, for -v's timings

	raw       atomic.Bool // the local terminal is in raw mode
	connected atomic.Bool // the transport is up (false while reconnecting)
	accepted  atomic.Bool // a TCP connection to reshd was made
	restore   func()      // puts the terminal back; safe to call twice
	ctlMu     sync.Mutex  // serialises writes on the control stream
	control   io.Writer
	lastErr   *readerr.Conn
	identity  ed25519.PrivateKey // nil with -insecure
	muxDone   <-chan struct{}    // closed when the yamux session ends
}

func (r *runner) run(ctx context.Context) (int, error) {
	stdinFD, stdinTerm := terminalFD(r.env.Stdin)
	_, stderrTerm := terminalFD(r.env.Stderr)
	if r.o.PTYRefused(stdinTerm) {
		r.notice("Pseudo-terminal will not be allocated because stdin is not a terminal.")
	}
	tty := r.o.WantTTY(stdinTerm)
	r.restore = func() {}

	dirs, err := r.clientDirs()
	if err != nil {
		return 0, err
	}
	defer dirs.Close()

	// Signals are caught from the start, so that one arriving while the
	// session is being set up is forwarded (or ends resh) rather than
	// killing resh with the remote command left running.
	sigs, stopCatching := r.catchSignals()
	defer stopCatching()

	sess, conn, err := r.connect(ctx, stderrTerm)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	defer func() {
		r.closeSession(sess, conn)
		wg.Wait()
	}()

	st, err := r.openStreams(sess)
	if err != nil {
		return 0, err
	}
	r.control = st.control

	// The local terminal goes raw for a pseudo-terminal, before Hello so
	// that nothing typed once the command runs is cooked.
	if tty && stdinTerm {
		if err := r.makeRaw(stdinFD); err != nil {
			return 0, err
		}
		defer func() { r.restore() }() // awaitStart may make it raw anew

	}
	if err := r.startCommand(st.control, sigs, tty, stdinFD, stdinTerm, stderrTerm); err != nil {
		return 0, err
	}

	var progress Progress = noProgress{}
	announce := stderrTerm && !r.o.Quiet
	if announce {
		progress = &lineProgress{mu: &r.stderr.mu, w: r.stderr.w, now: time.Now}
	}
	// Transfers: every stream reshd opens. The session's end stops them.
	transfers := r.serveTransfers(sess, &wg, dirs, progress, announce)
	defer transfers.stop()

	pumps := r.pump(st, &wg, tty && stdinTerm, transfers.Stdout(r.env.Stdout))
	ended := r.readExit(st.control, &wg)

	interrupted := make(chan os.Signal, 1)
	stopSignals := make(chan struct{})
	defer close(stopSignals)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer r.guard()
		r.forwardSignals(sigs, stopSignals, tty, stdinFD, stdinTerm, interrupted)
	}()

	return r.wait(ctx, ended, pumps, interrupted, transfers)
}

// connect dials reshd and starts the multiplexer on the connection; the
// caller ends the session with closeSession.
func (r *runner) connect(ctx context.Context, stderrTerm bool) (*yamux.Session, net.Conn, error) {
	conn, err := r.dial(ctx, stderrTerm)
	if err != nil {
		return nil, nil, err
	}
	r.lastErr = readerr.New(conn)
	sess, err := proto.Client(r.lastErr)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("protocol error: %w", err)
	}
	r.muxDone = sess.CloseChan()
	return sess, conn, nil
}

// startTimeout is Env's StartTimeout, else StartTimeout.
func (r *runner) startTimeout() time.Duration {
	if r.env.StartTimeout > 0 {
		return r.env.StartTimeout
	}
	return StartTimeout
}

// streams are the four streams resh opens.
type streams struct {
	control, stdin, stdout, stderr *yamux.Stream
}
