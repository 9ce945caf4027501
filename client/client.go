// Package client is resh's logic: it connects to reshd, runs one command or
// a login shell there with the local stdin, stdout and stderr (or the local
// terminal, in raw mode, for a pseudo-terminal), forwards signals and
// terminal resizes, and serves the client's files to lcat and ltee run in
// the session. The protocol is ../proto/spec.md.
package client

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/yamux"
	"golang.org/x/term"

	"resh/auth"
	"resh/connection"
	"resh/proto"
)

// Timeouts of resh itself.
const (
	// DialTimeout bounds connecting to reshd.
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
	// Environ is the environment; TERM, LANG and LC_* are sent. Default
	// os.Environ().
	Environ []string
	// Dir is the working directory lcat and ltee paths are relative to.
	// Default os.Getwd().
	Dir string
	// Signals, if not nil, replaces the signals resh receives (tests);
	// otherwise SIGINT, SIGTERM, SIGHUP, SIGQUIT and SIGWINCH are caught.
	Signals <-chan os.Signal
	// Connection, if not nil, is the base of the connection's Config.
	Connection *connection.Config
}

// Run runs the session described by o and returns resh's exit status: the
// remote command's code, 128+signal if a signal killed it, or ExitFailure
// after printing one line "resh: <cause>" on stderr. ctx bounds dialling
// and, cancelled, ends the session.
func Run(ctx context.Context, o *Options, env Env) int {
	if env.Stdin == nil {
		env.Stdin = os.Stdin
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
	r := &runner{o: o, env: env, stderr: &syncWriter{w: env.Stderr}}
	code, err := r.run(ctx)
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

	raw       atomic.Bool // the local terminal is in raw mode
	connected atomic.Bool // the transport is up (false while reconnecting)
	restore   func()      // puts the terminal back; safe to call twice
	ctlMu     sync.Mutex  // serialises writes on the control stream
	control   *yamux.Stream
	lastErr   *recordConn
	identity  ed25519.PrivateKey // nil with -insecure
	muxDone   <-chan struct{}    // closed when the yamux session ends
}

// eol is the line ending for messages: "\r\n" while the terminal is raw.
func (r *runner) eol() string {
	if r.raw.Load() {
		return "\r\n"
	}
	return "\n"
}

func (r *runner) run(ctx context.Context) (int, error) {
	stdinFD, stdinTerm := terminalFD(r.env.Stdin)
	_, stderrTerm := terminalFD(r.env.Stderr)
	tty := r.o.WantTTY(stdinTerm)

	dirs, err := r.clientDirs()
	if err != nil {
		return 0, err
	}
	defer dirs.Close()

	cfg := connection.Config{}
	if r.env.Connection != nil {
		cfg = *r.env.Connection
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = drainTimeout
	}
	r.connected.Store(true)
	noticed := false // touched only by the connection's goroutine
	userOnState := cfg.OnState
	if cfg.RefusedTimeout == 0 {
		cfg.RefusedTimeout = r.giveUp()
	}
	refusalNotice := func(connection.StateEvent) {}
	if stderrTerm {
		refusalNotice = r.refusalNotice(r.o.Addr())
	}
	cfg.OnState = func(ev connection.StateEvent) {
		r.connected.Store(ev.Connected)
		refusalNotice(ev)
		if stderrTerm && !ev.Connected && !noticed {
			noticed = true
			r.stderr.printf("resh: connection lost, reconnecting…%s", r.eol())
		}
		if stderrTerm && ev.Connected && noticed {
			noticed = false
			r.stderr.printf("resh: reconnected%s", r.eol())
		}
		if userOnState != nil {
			userOnState(ev)
		}
	}

	// Signals are caught from the start, so that one arriving while the
	// session is being set up is forwarded (or ends resh) rather than
	// killing resh with the remote command left running.
	sigs := r.env.Signals
	if sigs == nil {
		ch := make(chan os.Signal, 8)
		// SIGPIPE too: a write to a broken stdout or stderr then fails
		// with EPIPE instead of killing resh, which tells the server.
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGWINCH, syscall.SIGPIPE)
		defer signal.Stop(ch)
		sigs = ch
	}

	addr := r.o.Addr()
	dctx, cancel := context.WithTimeout(ctx, DialTimeout)
	var conn net.Conn
	if r.o.Insecure {
		cl, err := connection.Dial(dctx, "tcp", addr, &cfg)
		conn = cl
		if err != nil {
			cancel()
			return 0, r.dialError(addr, err)
		}
	} else {
		tcfg, key, err := r.secure(addr)
		if err != nil {
			cancel()
			return 0, err
		}
		r.identity = key
		tc, err := auth.Dial(dctx, "tcp", addr, &cfg, tcfg)
		conn = tc
		if err != nil {
			cancel()
			return 0, r.dialError(addr, err)
		}
	}
	cancel()
	r.lastErr = &recordConn{Conn: conn}
	sess, err := proto.Client(r.lastErr)
	if err != nil {
		conn.Close()
		return 0, fmt.Errorf("protocol error: %w", err)
	}
	r.muxDone = sess.CloseChan()
	var wg sync.WaitGroup
	defer func() {
		r.closeSession(sess, conn)
		wg.Wait()
	}()

	var streams [4]*yamux.Stream
	for i, kind := range []string{proto.KindControl, proto.KindStdin, proto.KindStdout, proto.KindStderr} {
		st, err := sess.OpenStream()
		if err == nil {
			err = proto.WriteMessage(st, proto.TypeOpen, proto.Open{Kind: kind})
		}
		if err != nil {
			return 0, r.lost(fmt.Errorf("open %s stream: %w", kind, err))
		}
		streams[i] = st
	}
	control, stdin, stdout, stderr := streams[0], streams[1], streams[2], streams[3]
	r.control = control

	// The local terminal goes raw for a pseudo-terminal, before Hello so
	// that nothing typed once the command runs is cooked.
	r.restore = func() {}
	if tty && stdinTerm {
		old, err := term.MakeRaw(stdinFD)
		if err != nil {
			return 0, fmt.Errorf("terminal: %w", err)
		}
		var once sync.Once
		r.restore = func() {
			once.Do(func() {
				_ = term.Restore(stdinFD, old)
				r.raw.Store(false)
			})
		}
		r.raw.Store(true)
		defer r.restore()
	}

	hello := proto.Hello{Version: proto.Version, Command: r.o.Command, TTY: tty, Env: sentEnv(r.env.Environ)}
	hello.Term = hello.Env["TERM"]
	if tty {
		hello.Rows, hello.Cols = r.size(stdinFD, stdinTerm)
	}
	if err := r.send(proto.TypeHello, hello); err != nil {
		return 0, r.lost(err)
	}
	var started proto.Started
	_ = control.SetReadDeadline(time.Now().Add(StartTimeout))
	if err := proto.Expect(control, proto.TypeStarted, &started); err != nil {
		var re *proto.RemoteError
		switch {
		case errors.As(err, &re):
			return 0, errors.New(re.Message)
		case errors.Is(err, io.EOF):
			return 0, r.lost(errors.New("the server closed the session before the command started"))
		case (errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, yamux.ErrTimeout)) && !r.connected.Load():
			return 0, r.lost(fmt.Errorf("connection lost before the command started"))
		case errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, yamux.ErrTimeout):
			return 0, fmt.Errorf("no answer from %s within %v", addr, StartTimeout)
		}
		return 0, fmt.Errorf("protocol error: %w", err)
	}
	_ = control.SetReadDeadline(time.Time{})

	var progress Progress = noProgress{}
	if stderrTerm {
		progress = &lineProgress{mu: &r.stderr.mu, w: r.stderr.w, now: time.Now, eol: r.eol}
	}

	// Transfers: every stream reshd opens. The session's end stops them.
	transfers := r.serveTransfers(sess, &wg, dirs, progress, stderrTerm)
	defer transfers.stop()

	// Output: stdout and stderr kept apart, each until its EOF.
	outDone := make(chan struct{}, 2)
	broken := make(chan struct{}) // closed when a local reader is gone
	var breakOnce sync.Once
	for _, c := range []struct {
		w    io.Writer
		s    *yamux.Stream
		kind string
	}{{r.env.Stdout, stdout, proto.KindStdout}, {r.stderr, stderr, proto.KindStderr}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.guard()
			if _, err := io.Copy(c.w, c.s); err != nil {
				if errors.Is(err, syscall.EPIPE) {
					// The reader went away: the command's writes must
					// fail too.
					_ = r.send(proto.TypeOutputClosed, proto.OutputClosed{Stream: c.kind})
					breakOnce.Do(func() { close(broken) })
				}
				// The local side is gone: drain so the command is not blocked.
				_, _ = io.Copy(io.Discard, c.s)
			}
			outDone <- struct{}{}
		}()
	}

	// Input. Not waited for: a read from a terminal cannot be interrupted.
	escaped := make(chan struct{})
	go func() {
		defer r.guard()
		r.copyStdin(stdin, tty && stdinTerm, escaped)
	}()

	// Control: the Exit message.
	type ending struct {
		exit proto.Exit
		err  error
	}
	ended := make(chan ending, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer r.guard()
		for {
			t, body, err := proto.ReadMessage(control)
			if err != nil {
				ended <- ending{err: err}
				return
			}
			if t == proto.TypeExit {
				var e proto.Exit
				if err := proto.Decode(body, &e); err != nil {
					ended <- ending{err: fmt.Errorf("protocol error: %w", err)}
					return
				}
				ended <- ending{exit: e}
				return
			}
		}
	}()

	interrupted := make(chan os.Signal, 1)
	stopSignals := make(chan struct{})
	defer close(stopSignals)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer r.guard()
		r.forwardSignals(sigs, stopSignals, tty, stdinFD, stdinTerm, interrupted)
	}()

	var end ending
	select {
	case end = <-ended:
	case <-broken:
		// Told: give the command a moment to end of its write.
		t := time.NewTimer(pipeGrace)
		defer t.Stop()
		select {
		case <-ended:
		case <-t.C:
		case <-escaped:
		case <-ctx.Done():
		}
		return ExitPipe, nil
	case <-escaped:
		return 0, errors.New("connection closed by escape")
	case s := <-interrupted:
		return 0, fmt.Errorf("%v while the connection was lost", s)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if end.err != nil {
		if errors.Is(end.err, proto.ErrTooLong) || strings.HasPrefix(end.err.Error(), "protocol error") {
			return 0, end.err
		}
		if errors.Is(end.err, io.EOF) {
			return 0, r.lost(errors.New("the server closed the session"))
		}
		return 0, r.lost(end.err)
	}
	for range 2 {
		select {
		case <-outDone:
		case <-escaped:
			return 0, errors.New("connection closed by escape")
		}
	}
	select {
	case <-broken:
		return ExitPipe, nil
	default:
	}
	// Transfers that ended with the command report their end on their
	// own streams, maybe after Exit: give them a moment to be told.
	transfers.wait(TransferGrace, escaped)
	return exitStatus(end.exit), nil
}

// CloseGrace bounds how long resh waits, as it leaves, for the server to
// acknowledge the end of the session (and whatever was sent before it).
const CloseGrace = 3 * time.Second

// closeSession ends the session as resh leaves: a drained close, so that
// the server learns at once that resh is gone, while the connection is up;
// abandoned at once if the connection is lost (the user is leaving: it is
// not worth waiting for the network), or after CloseGrace.
func (r *runner) closeSession(sess *yamux.Session, conn net.Conn) {
	abort := func() {}
	if a, ok := conn.(interface{ Abort() }); ok {
		abort = a.Abort
	}
	if !r.connected.Load() {
		abort()
	}
	closed := make(chan struct{})
	go func() {
		_ = sess.Close()
		close(closed)
	}()
	t := time.NewTimer(CloseGrace)
	defer t.Stop()
	select {
	case <-closed:
	case <-t.C:
		abort()
		<-closed
	}
}

// TransferGrace bounds how long resh waits, once the command has exited and
// its output has ended, for lcat and ltee transfers still open to finish.
const TransferGrace = 2 * time.Second

// lost explains a session that ended early, with the connection's own
// error when it has one.
func (r *runner) lost(err error) error {
	cause := r.lastErr.err()
	if cause == nil && r.muxDone != nil {
		// A write can fail on a session the peer closed before our
		// reader got to the reason it sent (a TLS alert refusing our
		// key): let the reader reach it.
		t := time.NewTimer(time.Second)
		select {
		case <-r.muxDone:
		case <-t.C:
		}
		t.Stop()
		cause = r.lastErr.err()
	}
	if refused := auth.Refusal(cause, r.identity); r.identity != nil && refused != nil {
		// TLS 1.3: the server's refusal of our key comes after our side
		// of the handshake, on the first read.
		return refused
	}
	if errors.Is(cause, auth.ErrTampered) {
		return tampered("session ended", cause)
	}
	if errors.Is(cause, connection.ErrServerGone) {
		return r.goneError()
	}
	if cause != nil && !errors.Is(cause, io.EOF) {
		return fmt.Errorf("session lost: %w", cause)
	}
	return fmt.Errorf("session lost: %w", err)
}

// guard restores the terminal before a panic in a goroutine kills resh.
func (r *runner) guard() {
	if v := recover(); v != nil {
		if r.restore != nil {
			r.restore()
		}
		panic(v)
	}
}

// send writes one message on the control stream.
func (r *runner) send(t proto.Type, v any) error {
	r.ctlMu.Lock()
	defer r.ctlMu.Unlock()
	return proto.WriteMessage(r.control, t, v)
}

// size returns the terminal's rows and columns, zero if unknown.
func (r *runner) size(fd int, isTerm bool) (rows, cols uint16) {
	if !isTerm {
		if f, ok := r.env.Stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			fd, isTerm = int(f.Fd()), true
		}
	}
	if !isTerm {
		return 0, 0
	}
	w, h, err := term.GetSize(fd)
	if err != nil || w <= 0 || h <= 0 || w > 65535 || h > 65535 {
		return 0, 0
	}
	return uint16(h), uint16(w)
}

// copyStdin sends stdin to the command; without escapes (no terminal) it
// half-closes the stream at EOF so the command reads EOF too.
func (r *runner) copyStdin(stdin *yamux.Stream, escapes bool, escaped chan<- struct{}) {
	if !escapes {
		if _, err := io.Copy(stdin, r.env.Stdin); err == nil {
			stdin.Close()
		}
		return
	}
	var e escaper
	buf := make([]byte, 4096)
	for {
		n, err := r.env.Stdin.Read(buf)
		if n > 0 {
			out, quit := e.feed(buf[:n])
			if len(out) > 0 {
				if _, werr := stdin.Write(out); werr != nil {
					return
				}
			}
			if quit {
				close(escaped)
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// forwardSignals sends the signals resh receives to the command and the
// terminal's new size on SIGWINCH. A signal while the connection is lost
// ends resh (on interrupted) instead, since it could not be delivered.
func (r *runner) forwardSignals(sigs <-chan os.Signal, stop <-chan struct{}, tty bool, fd int, isTerm bool, interrupted chan<- os.Signal) {
	for {
		select {
		case <-stop:
			return
		case s := <-sigs:
			if s == syscall.SIGWINCH {
				if tty {
					if rows, cols := r.size(fd, isTerm); rows > 0 {
						_ = r.send(proto.TypeResize, proto.Resize{Rows: rows, Cols: cols})
					}
				}
				continue
			}
			name := signalName(s)
			if name == "" {
				continue
			}
			if !r.connected.Load() {
				select {
				case interrupted <- s:
				default:
				}
				continue
			}
			_ = r.send(proto.TypeSignal, proto.Signal{Name: name})
		}
	}
}

// signalName is the protocol's name of a signal resh forwards.
func signalName(s os.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "INT"
	case syscall.SIGTERM:
		return "TERM"
	case syscall.SIGHUP:
		return "HUP"
	case syscall.SIGQUIT:
		return "QUIT"
	}
	return ""
}

// exitStatus is resh's exit status for the command's end.
func exitStatus(e proto.Exit) int {
	if e.Signal > 0 {
		return 128 + e.Signal
	}
	if e.Code < 0 || e.Code > 255 {
		return ExitFailure
	}
	return e.Code
}

// sentEnv picks the variables the protocol carries: TERM, LANG and LC_*.
func sentEnv(environ []string) map[string]string {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && (k == "TERM" || k == "LANG" || strings.HasPrefix(k, "LC_")) {
			env[k] = v
		}
	}
	return env
}

// terminalFD returns the file descriptor of v when it is a terminal.
func terminalFD(v any) (int, bool) {
	f, ok := v.(*os.File)
	if !ok {
		return -1, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// syncWriter serialises writes to stderr, shared by the command's stderr,
// progress lines and notices.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, format, args...)
}

// recordConn remembers the first error a Read of the connection returned,
// to explain a lost session.
type recordConn struct {
	net.Conn
	mu   sync.Mutex
	rerr error
}

func (c *recordConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.mu.Lock()
		if c.rerr == nil {
			c.rerr = err
		}
		c.mu.Unlock()
	}
	return n, err
}

func (c *recordConn) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rerr
}

// secure loads (or creates) resh's identity and returns the TLS
// configuration for the server at addr.
func (r *runner) secure(addr string) (*tls.Config, ed25519.PrivateKey, error) {
	home, err := auth.HomeDir(lookupEnv(r.env.Environ, "RESH_HOME"))
	if err != nil {
		return nil, nil, err
	}
	var key ed25519.PrivateKey
	if r.o.Identity != "" {
		key, err = auth.LoadIdentity(r.o.Identity)
	} else {
		path := filepath.Join(home, auth.IdentityFile)
		var created bool
		key, created, err = auth.LoadOrCreateIdentity(path)
		if created {
			r.stderr.printf("resh: created identity %s, key %s\n", path, auth.Fingerprint(auth.PublicKey(key)))
		}
	}
	if err != nil {
		return nil, nil, err
	}
	tcfg, err := auth.ClientTLS(key, filepath.Join(home, auth.KnownHostsFile), addr, r.o.KnownOnly, r.stderr)
	if err != nil {
		return nil, nil, err
	}
	return tcfg, key, nil
}

// lookupEnv returns the value of the variable name in environ.
func lookupEnv(environ []string, name string) string {
	v := ""
	for _, kv := range environ {
		if k, val, ok := strings.Cut(kv, "="); ok && k == name {
			v = val
		}
	}
	return v
}

// dialError says why connecting failed, without the layers' repetitions:
// first a refusal of either side's key.
func (r *runner) dialError(addr string, err error) error {
	var changed *auth.HostKeyChangedError
	var unknown *auth.UnknownHostError
	switch {
	case errors.As(err, &changed):
		return changed
	case errors.As(err, &unknown):
		return unknown
	case r.identity != nil && auth.Refusal(err, r.identity) != nil:
		return auth.Refusal(err, r.identity)
	case errors.Is(err, auth.ErrTampered):
		return tampered("cannot connect to "+addr, err)
	case errors.Is(err, connection.ErrSecurityMismatch) && r.o.Insecure:
		return fmt.Errorf("cannot connect to %s: the server requires TLS: run resh without -insecure", addr)
	case errors.Is(err, connection.ErrSecurityMismatch):
		return fmt.Errorf("cannot connect to %s: the server runs without TLS (reshd -insecure): use resh -insecure, on loopback only", addr)
	}
	return dialError(addr, err)
}

// tamperError says that TLS found altered data, for a user: what
// happened and what it means, with TLS's own words last.
type tamperError struct {
	what string
	err  error // wraps auth.ErrTampered
}

func tampered(what string, err error) error { return &tamperError{what, err} }

func (e *tamperError) Error() string {
	detail := e.err.Error()
	if i := strings.LastIndex(detail, " ("); i >= 0 {
		detail = detail[i:]
	} else {
		detail = ""
	}
	return e.what + ": the data was altered in transit and failed TLS authentication: someone is tampering with the connection (nothing altered was delivered)" + detail
}

func (e *tamperError) Unwrap() error { return e.err }

// dialError says why connecting failed, without the layers' repetitions.
func dialError(addr string, err error) error {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.As(err, &dnsErr):
		return fmt.Errorf("cannot resolve %s: %s", dnsErr.Name, dnsErr.Err)
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return fmt.Errorf("cannot connect to %s: %w", addr, opErr.Err)
	}
	return fmt.Errorf("cannot connect to %s: %w", addr, err)
}
