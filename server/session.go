package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/creack/pty"
	"github.com/hashicorp/yamux"
	"golang.org/x/sys/unix"

	"resh/auth"
	"resh/cluster"
	"resh/connection"
	"resh/proto"
)

// closeWait bounds how long a session waits, after sending Exit or Error,
// for the client to close the session before closing it itself.
const closeWait = 5 * time.Second

// signals are the signals a client may send (proto.Signal.Name).
var signals = map[string]syscall.Signal{
	"INT":  syscall.SIGINT,
	"TERM": syscall.SIGTERM,
	"HUP":  syscall.SIGHUP,
	"QUIT": syscall.SIGQUIT,
	"KILL": syscall.SIGKILL,
	"USR1": syscall.SIGUSR1,
	"USR2": syscall.SIGUSR2,
}

// session is one client's session: its streams, its command, its broker.
type session struct {
	srv   *Server
	acc   *connection.Accepted // nil for a session handed over by ServeConn or ServeMux
	given Mux                  // ServeMux's, else nil
	conn  net.Conn             // what yamux runs on: acc, TLS above it, or ServeConn's
	log   *slog.Logger
	start time.Time

	ctrlMu  sync.Mutex // serialises writes on the control stream
	control *yamux.Stream

	mu        sync.Mutex
	mux       Mux
	placement *cluster.Placement // once placed on a remote executor: relayed
	pid       int                // the command's process (and process group) id, once started
	exited    bool               // the command was reaped
	hupped    bool               // hangup was called
	// Once the command runs: what is still to come (its exit and each of
	// its outputs' end), closing finished when nothing is; and how it
	// exited.
	pending  int
	finished chan struct{}
	status   syscall.WaitStatus
	waitErr  error

	cancelJob context.CancelCauseFunc // a submitted program's, while it runs (job.go)

	wg sync.WaitGroup // the session's helper goroutines

	isLink bool // an executor's link, not a client's session (under srv.mu)
}

func newSession(s *Server, acc *connection.Accepted) *session {
	return &session{
		srv:   s,
		acc:   acc,
		conn:  acc,
		start: time.Now(),
		log:   s.cfg.Logger.With("remote", acc.RemoteAddr().String(), "session", acc.SessionID()),
	}
}

// newConnSession is a session on conn, already authenticated (ServeConn).
func newConnSession(s *Server, conn net.Conn, remote string) *session {
	return &session{
		srv:   s,
		conn:  conn,
		start: time.Now(),
		log:   s.cfg.Logger.With("remote", remote),
	}
}

// streams are the four streams the client opens.
type streams struct {
	control, stdin, stdout, stderr *yamux.Stream
	link                           *yamux.Stream // instead, an executor's link (cluster.KindExecutor)
}

// takeStdin hands the stdin stream to its copy, which closes it once the
// client's input ended: then the session holds it no more.
func (st *streams) takeStdin() *yamux.Stream {
	in := st.stdin
	st.stdin = nil
	return in
}

func (st *streams) closeAll() {
	for _, s := range []*yamux.Stream{st.control, st.stdin, st.stdout, st.stderr, st.link} {
		if s != nil {
			_ = s.Close()
		}
	}
}

// secure runs the TLS handshake above the connection session, bounded by
// Config.HandshakeTimeout and by Shutdown. A refused client was logged by
// the TLS configuration already.
func (ss *session) secure() bool {
	ctx, cancel := context.WithTimeout(context.Background(), ss.srv.cfg.HandshakeTimeout)
	defer cancel()
	// The handshake runs in a goroutine of its own: the deep stack it grows
	// goes away with it, instead of staying with this goroutine, which
	// lives as long as the session.
	type result struct {
		tc  *auth.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		tc, err := auth.Server(ctx, ss.acc, ss.srv.cfg.TLS)
		done <- result{tc, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ss.srv.stopping:
		cancel()
		r = <-done
	}
	if r.err != nil {
		var refused *auth.RefusedKeyError
		if errors.As(r.err, &refused) {
			// Logged once already, with the key and the address.
			ss.log.Debug("reshd: TLS handshake failed", "err", r.err)
		} else {
			ss.log.Info("reshd: TLS handshake failed", "err", r.err)
		}
		return false
	}
	ss.conn = r.tc
	return true
}

// serve runs the session to its end.
func (ss *session) serve() {
	if ss.acc != nil && ss.srv.cfg.TLS != nil && !ss.secure() {
		return
	}
	if tc, ok := ss.conn.(*auth.Conn); ok {
		defer func() {
			if err := tc.Tampered(); err != nil {
				ss.log.Warn("reshd: session ended: tampering detected on the path", "err", err)
			}
		}()
	}
	var err error
	mux := ss.given
	if mux == nil {
		ymux, err := proto.Server(ss.conn)
		if err != nil {
			ss.log.Error("reshd: session refused", "err", err)
			_ = ss.conn.Close()
			return
		}
		mux = ymux
	}
	defer ss.wg.Wait()
	defer func() { _ = mux.Close() }() // closes acc, draining what was written
	ss.mu.Lock()
	ss.mux = mux
	hupped := ss.hupped
	ss.mu.Unlock()
	if hupped {
		return
	}

	var (
		st    *streams
		hello proto.Hello
	)
	aside(func() {
		if st, hello, err = ss.open(mux); err == nil {
			ss.log = ss.log.With("command", hello.Command, "tty", hello.TTY)
		}
	})
	if err != nil {
		ss.log.Warn("reshd: session setup failed", "err", err)
		return
	}
	defer st.closeAll()
	if st.link != nil {
		ss.serveLink(mux, st.link)
		return
	}
	ss.control = st.control
	if tc, ok := ss.conn.(*auth.Conn); ok && tc.Protocol() == cluster.LinkALPN {
		ss.log.Warn("reshd: an executor's key opened a client session: refused", "fingerprint", tc.PeerFingerprint())
		ss.refuse(mux, "reshd: an executor's key cannot open a session: use a key from this server's authorized_keys")
		return
	}

	if hello.Version != proto.Version {
		ss.refuse(mux, fmt.Sprintf("reshd: protocol version mismatch: client speaks version %d, server speaks version %d", hello.Version, proto.Version))
		return
	}
	if msg := userRefusal(hello.User); msg != "" {
		ss.refuse(mux, msg)
		return
	}

	if hello.Query != "" {
		ss.answer(mux, st, hello)
		return
	}
	if !ss.direct() {
		pl, err := ss.place(mux, hello)
		if err != nil {
			ss.refuse(mux, err.Error())
			return
		}
		defer pl.Done()
		if !pl.InProcess() {
			ss.relay(mux, st, hello, pl)
			return
		}
	}

	if hello.Job != nil {
		ss.serveJob(mux, st, hello)
		return
	}

	var (
		b          *broker
		stopBroker func()
	)
	aside(func() {
		if b, err = newBroker(mux, ss.log); err == nil {
			stopBroker = ss.serveBroker(b)
		}
	})
	if err != nil {
		ss.refuse(mux, err.Error())
		return
	}
	defer b.close()
	defer stopBroker()

	var r *running
	aside(func() { r, err = ss.startCommand(st, hello, b.path) })
	if err != nil {
		ss.refuse(mux, err.Error())
		return
	}
	defer ss.srv.cfg.Guard.remove(ss.pid)
	exit := ss.wait(mux, r)
	ss.log.Info("reshd: session ended", "code", exit.Code, "signal", exit.Signal, "duration", time.Since(ss.start).Round(time.Millisecond))
	ss.writeControl(proto.TypeExit, exit)
	_ = st.control.Close()
	ss.awaitClientClose(mux)
}

// open accepts the client's four streams and reads Hello, within
// Config.OpenTimeout.
func (ss *session) open(mux Mux) (*streams, proto.Hello, error) {
	var hello proto.Hello
	var timedOut atomic.Bool
	t := time.AfterFunc(ss.srv.cfg.OpenTimeout, func() { timedOut.Store(true); _ = mux.Close() })
	defer t.Stop()
	fail := func(st *streams, err error) (*streams, proto.Hello, error) {
		st.closeAll()
		if timedOut.Load() {
			err = fmt.Errorf("reshd: the client did not open its streams within %v: %w", ss.srv.cfg.OpenTimeout, err)
		}
		return nil, hello, err
	}
	st := &streams{}
	for n := 0; n < 4; n++ {
		if n == 1 && st.link != nil {
			break
		}
		s, err := mux.AcceptStream()
		if err != nil {
			return fail(st, fmt.Errorf("reshd: accept stream: %w", err))
		}
		var o proto.Open
		if err := proto.Expect(s, proto.TypeOpen, &o); err != nil {
			_ = s.Close()
			return fail(st, fmt.Errorf("reshd: read Open: %w", err))
		}
		s.Shrink() // give back the receive buffer until more comes
		var slot **yamux.Stream
		switch o.Kind {
		case proto.KindControl:
			slot = &st.control
		case proto.KindStdin:
			slot = &st.stdin
		case proto.KindStdout:
			slot = &st.stdout
		case proto.KindStderr:
			slot = &st.stderr
		case cluster.KindExecutor:
			if n == 0 {
				st.link = s
				continue
			}
			_ = s.Close()
			return fail(st, errors.New("reshd: an executor link among a client's streams"))
		default:
			_ = s.Close()
			return fail(st, fmt.Errorf("reshd: unknown stream kind %q", o.Kind))
		}
		if *slot != nil {
			_ = s.Close()
			return fail(st, fmt.Errorf("reshd: stream %q opened twice", o.Kind))
		}
		*slot = s
	}
	if st.link != nil {
		t.Stop()
		return st, hello, nil
	}
	if err := proto.Expect(st.control, proto.TypeHello, &hello); err != nil {
		return fail(st, fmt.Errorf("reshd: read Hello: %w", err))
	}
	st.control.Shrink()
	if !t.Stop() && timedOut.Load() {
		return fail(st, errors.New("server: session setup timed out"))
	}
	return st, hello, nil
}

// refuse sends an Error on the control stream, closes it and waits a little
// for the client to go.
func (ss *session) refuse(mux Mux, msg string) {
	ss.log.Warn("reshd: session refused", "err", msg)
	ss.writeControl(proto.TypeError, proto.Error{Message: msg})
	_ = ss.control.Close()
	ss.awaitClientClose(mux)
}

func (ss *session) awaitClientClose(mux Mux) {
	t := time.NewTimer(closeWait)
	defer t.Stop()
	select {
	case <-mux.CloseChan():
	case <-t.C:
	case <-ss.srv.stopping:
	}
}

func (ss *session) writeControl(t proto.Type, v any) {
	ss.ctrlMu.Lock()
	defer ss.ctrlMu.Unlock()
	if err := proto.WriteMessage(ss.control, t, v); err != nil {
		ss.log.Debug("reshd: control write failed", "err", err)
	}
}

// serveBroker accepts transfers on b's socket once the first one comes:
// until then no goroutine waits on it. It returns what stops that, which
// must be called before b closes.
func (ss *session) serveBroker(b *broker) (stop func()) {
	start := func() {
		ss.wg.Add(1)
		go func() { defer ss.wg.Done(); b.serve() }()
	}
	w, err := ss.srv.poller.watch(b.ln, func(*watch) { start() })
	if err != nil {
		start()
		return func() {}
	}
	return w.stop
}

// aside runs fn in a goroutine of its own and waits for it: the deep stack
// fn may need (TLS, JSON, starting a process) goes away with that
// goroutine, instead of staying with the caller, the goroutine that lives
// as long as the session.
func aside(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
}

// running is a command that runs.
type running struct {
	outs   []*output
	master *os.File // the pty master, with TTY
	exit   *exitWatch
}

// startCommand starts the command and the copying of its streams. An
// error means it could not start.
func (ss *session) startCommand(st *streams, h proto.Hello, socket string) (*running, error) {
	cmd, err := command(h, socket)
	if err != nil {
		return nil, err
	}
	var (
		outs   []*output
		master *os.File
	)
	ss.mu.Lock()
	if ss.hupped {
		ss.mu.Unlock()
		return nil, errors.New("reshd: the server is shutting down")
	}
	// The leader gets SIGHUP if reshd dies (with its thread, the
	// spawner's); its group is listed with the guardian on that thread as
	// soon as it started, with no goroutine switch between: the command
	// must not have time to fork anything the guardian does not know of.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: pdeathsig}
	if h.TTY {
		ss.srv.spawn.run(func() {
			if master, err = startPTY(cmd, h.Rows, h.Cols); err == nil {
				ss.srv.cfg.Guard.add(cmd.Process.Pid)
			}
		})
		if err != nil {
			ss.mu.Unlock()
			return nil, fmt.Errorf("reshd: start %s in a pty: %w", cmd.Path, err)
		}
		o := ss.output(master, st.stdout, true)
		if err := o.start(ss.srv.poller); err != nil {
			ss.mu.Unlock()
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			_ = master.Close()
			ss.srv.cfg.Guard.remove(cmd.Process.Pid)
			return nil, fmt.Errorf("reshd: start %s in a pty: %w", cmd.Path, err)
		}
		outs = append(outs, o)
		_ = st.stderr.Close()
		in := st.takeStdin()
		ss.wg.Add(1)
		go func() {
			defer ss.wg.Done()
			lw := &lineWriter{w: master}
			copyIn(lw, in, ss.mux.CloseChan())
			if _, err := in.Read(nil); errors.Is(err, io.EOF) {
				typeEOF(master, lw.midLine)
			}
			_ = in.Close()
		}()
	} else {
		var files []*os.File // the command's ends, closed once it started
		pipe := func() (r, w *os.File) {
			if err == nil {
				r, w, err = os.Pipe()
			}
			return r, w
		}
		inR, inW := pipe()
		outR, outW := pipe()
		errR, errW := pipe()
		files = append(files, inR, outW, errW)
		closeAll := func(fs ...*os.File) {
			for _, f := range fs {
				if f != nil {
					_ = f.Close()
				}
			}
		}
		for _, o := range []*output{ss.output(outR, st.stdout, false), ss.output(errR, st.stderr, false)} {
			if err == nil {
				err = o.start(ss.srv.poller)
				outs = append(outs, o)
			}
		}
		if err == nil {
			cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
			cmd.SysProcAttr.Setpgid = true
			ss.srv.spawn.run(func() {
				if err = cmd.Start(); err == nil {
					ss.srv.cfg.Guard.add(cmd.Process.Pid)
				}
			})
		}
		if err != nil {
			ss.mu.Unlock()
			for _, o := range outs { // before the pipes' ends close
				if o.w != nil {
					o.w.stop()
				}
			}
			closeAll(files...)
			closeAll(inW, outR, errR)
			return nil, fmt.Errorf("reshd: start %s: %w", cmd.Path, err)
		}
		closeAll(files...)
		in := st.takeStdin()
		ss.wg.Add(1)
		go func() {
			defer ss.wg.Done()
			copyIn(inW, in, ss.mux.CloseChan())
			_ = inW.Close()
			_ = in.Close()
		}()
	}
	ss.pid = cmd.Process.Pid
	ss.pending = len(outs) + 1
	ss.finished = make(chan struct{})
	ss.mu.Unlock()
	ss.log.Info("reshd: session started", "pid", ss.pid)
	ss.writeControl(proto.TypeStarted, proto.Started{PID: ss.pid})

	exit := watchExit(ss.srv.poller, cmd.Process, &ss.mu, func(ws syscall.WaitStatus, err error) {
		ss.exited = true
		ss.status, ss.waitErr = ws, err
		for _, o := range outs {
			o.commandExited()
		}
		ss.doneLocked()
	})
	return &running{outs: outs, master: master, exit: exit}, nil
}

// wait serves control messages until the command exited and its output
// was copied, and returns how it ended.
func (ss *session) wait(mux Mux, r *running) proto.Exit {
	ss.serveControl(r)
	// The control stream ended: hang up if the session is gone.
	select {
	case <-ss.finished:
	case <-mux.CloseChan():
		ss.hangup()
		<-ss.finished
	}
	r.exit.stop()
	for _, o := range r.outs {
		_ = o.f.Close()
	}
	return exitOf(ss.status, ss.waitErr)
}

// output prepares to copy f, one of the command's outputs, to dst.
func (ss *session) output(f *os.File, dst *yamux.Stream, pty bool) *output {
	return &output{
		f:   f,
		dst: dst,
		pty: pty,
		spawn: func(fn func()) {
			ss.wg.Add(1)
			go func() { defer ss.wg.Done(); fn() }()
		},
		ended: func() {
			ss.mu.Lock()
			defer ss.mu.Unlock()
			ss.doneLocked()
		},
	}
}

// doneLocked counts one of the exit and the outputs' ends; once all came,
// it wakes serveControl.
func (ss *session) doneLocked() {
	ss.pending--
	if ss.pending == 0 {
		close(ss.finished)
		_ = ss.control.SetReadDeadline(time.Unix(1, 0))
	}
}

// serveControl serves Resize and Signal messages until the command
// finished (it exited and its output was copied), which wakes it with a
// past read deadline, or until the control stream ends.
func (ss *session) serveControl(r *running) {
	cr := &controlReader{r: ss.control}
	for {
		_ = ss.control.SetReadDeadline(time.Time{})
		select {
		case <-ss.finished:
			return
		default:
		}
		t, body, err := cr.next()
		if errors.Is(err, yamux.ErrTimeout) {
			continue // woken: look again
		}
		if err != nil {
			return
		}
		ss.control.Shrink()
		aside(func() { ss.handleControl(t, body, r) })
	}
}

// handleControl serves a Resize, Signal or OutputClosed message.
func (ss *session) handleControl(t proto.Type, body []byte, r *running) {
	master := r.master
	switch t {
	case proto.TypeOutputClosed:
		var oc proto.OutputClosed
		if proto.Decode(body, &oc) != nil {
			return
		}
		ss.outputClosed(oc.Stream, r)
	case proto.TypeResize:
		var r proto.Resize
		if proto.Decode(body, &r) != nil || master == nil {
			return
		}
		if err := setSize(master, r.Rows, r.Cols); err != nil {
			ss.log.Debug("reshd: resize failed", "err", err)
		}
	case proto.TypeSignal:
		var s proto.Signal
		if err := proto.Decode(body, &s); err != nil {
			return
		}
		sig, ok := signals[s.Name]
		if !ok {
			ss.writeControl(proto.TypeError, proto.Error{Message: fmt.Sprintf("reshd: unknown signal %q", s.Name)})
			return
		}
		ss.signal(sig)
	}
}

// outputClosed acts on the client's reader of stream going away: the
// command's writes to that pipe fail from now on; a pty, one terminal for
// both outputs, is hung up.
func (ss *session) outputClosed(stream string, r *running) {
	i := map[string]int{proto.KindStdout: 0, proto.KindStderr: 1}
	n, ok := i[stream]
	if !ok {
		return
	}
	ss.log.Info("reshd: the client's reader of the command's output is gone", "stream", stream)
	if r.master != nil {
		ss.hangup()
		return
	}
	if n < len(r.outs) {
		r.outs[n].shut()
	}
}

// signal sends sig to the command's process group, unless it was reaped.
func (ss *session) signal(sig syscall.Signal) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.pid > 0 && !ss.exited {
		_ = syscall.Kill(-ss.pid, sig)
	}
}

// hangup sends SIGHUP to the command's process group, and SIGKILL after
// Config.KillGrace. Before the command starts, it ends the
// session instead.
func (ss *session) hangup() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.hupped {
		return
	}
	ss.hupped = true
	if ss.placement != nil {
		// Relayed: the executor hangs it up, and its Exit comes back.
		ss.placement.Hangup()
		return
	}
	if ss.isLinkSession() {
		return
	}
	if ss.cancelJob != nil {
		ss.cancelJob(errHangup)
		return
	}
	if ss.pid <= 0 {
		// Still setting up: there is no command to hang up, so end the
		// session rather than wait for the client's streams.
		if ss.mux != nil {
			_ = ss.mux.Close()
		}
		return
	}
	if ss.exited {
		return
	}
	ss.log.Info("reshd: hanging up the command (SIGHUP)", "pid", ss.pid)
	_ = syscall.Kill(-ss.pid, syscall.SIGHUP)
	pid := ss.pid
	// SIGKILL the group even if its leader exited: a process it started
	// may still hold the output pipes, and the session's end waits for
	// them. The group id cannot be reused while the group has members.
	time.AfterFunc(ss.srv.cfg.KillGrace, func() { _ = syscall.Kill(-pid, syscall.SIGKILL) })
}

// isLinkSession reports an executor's link: the master closes those
// itself, after the clients' sessions.
func (ss *session) isLinkSession() bool {
	ss.srv.mu.Lock()
	defer ss.srv.mu.Unlock()
	return ss.isLink
}

// exitOf turns a wait status into an Exit message; a failed wait is 255.
func exitOf(ws syscall.WaitStatus, err error) proto.Exit {
	switch {
	case err != nil:
		return proto.Exit{Code: 255}
	case ws.Signaled():
		return proto.Exit{Signal: int(ws.Signal()), Core: ws.CoreDump()}
	}
	return proto.Exit{Code: ws.ExitStatus()}
}

// startPTY starts cmd on a new pty of rows×cols as the leader of a new
// session, and returns the master, in non-blocking mode so that closing it
// ends a pending Read.
func startPTY(cmd *exec.Cmd, rows, cols uint16) (*os.File, error) {
	if rows == 0 {
		rows = 24
	}
	if cols == 0 {
		cols = 80
	}
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: rows, Cols: cols})
	if err != nil {
		return nil, err
	}
	defer func() { _ = ptmx.Close() }()
	syscall.ForkLock.RLock()
	fd, err := syscall.Dup(int(ptmx.Fd()))
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("reshd: dup pty: %w", err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		_ = syscall.Close(fd)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("reshd: pty non-blocking: %w", err)
	}
	return os.NewFile(uintptr(fd), "/dev/ptmx"), nil
}

// setSize sets the pty's window size without File.Fd, which would put the
// master back in blocking mode.
func setSize(master *os.File, rows, cols uint16) error {
	rc, err := master.SyscallConn()
	if err != nil {
		return fmt.Errorf("reshd: resize: %w", err)
	}
	ws := pty.Winsize{Rows: rows, Cols: cols}
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCSWINSZ, uintptr(unsafe.Pointer(&ws)))
	}); err != nil {
		return fmt.Errorf("reshd: resize: %w", err)
	}
	if errno != 0 {
		return fmt.Errorf("reshd: resize: %w", errno)
	}
	return nil
}

// userRefusal is the refusal of a Hello asking for user (empty: none)
// when reshd runs sessions as another account, or "".
func userRefusal(want string) string {
	if want == "" {
		return ""
	}
	u, err := user.Current()
	if err != nil {
		return fmt.Sprintf("reshd: who am I: %v", err)
	}
	if u.Username == want {
		return ""
	}
	host, err := os.Hostname()
	if err != nil {
		host = "this host"
	}
	return fmt.Sprintf("reshd on %s runs sessions as %s only, not %s", host, u.Username, want)
}

// lineWriter remembers whether the last byte written ended a line.
type lineWriter struct {
	w       io.Writer
	midLine bool
}

func (l *lineWriter) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	if n > 0 {
		l.midLine = p[n-1] != '\n' && p[n-1] != '\r'
	}
	return n, err
}

// typeEOF types the terminal's EOF character (^D unless changed) on the
// pty once the client's stdin ended, as sshd does for ssh -tt: twice after
// a partial line, where the first only ends the line.
func typeEOF(master *os.File, midLine bool) {
	eof := byte(4)
	if rc, err := master.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			if t, err := unix.IoctlGetTermios(int(fd), unix.TCGETS); err == nil && t.Cc[unix.VEOF] != 0 {
				eof = t.Cc[unix.VEOF]
			}
		})
	}
	b := []byte{eof}
	if midLine {
		b = append(b, eof)
	}
	_, _ = master.Write(b)
}

// closeGiven closes what a session handed over runs on.
func (ss *session) closeGiven() {
	if ss.given != nil {
		_ = ss.given.Close()
	}
	if ss.conn != nil {
		_ = ss.conn.Close()
	}
}
