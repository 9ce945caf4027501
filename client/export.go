package client

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"resh/auth"
	"resh/proto"
)

// Session is a session opened as resh opens its own, for the project's
// other clients (reshjob): dialled with resh's keys, host pinning,
// -i, -known-only and -insecure, reconnecting over outages, its four
// streams open and announced. What is sent on them is the caller's.
type Session struct {
	// Control, Stdin, Stdout and Stderr are the session's streams.
	Control, Stdin, Stdout, Stderr *yamux.Stream

	r      *runner
	sess   *yamux.Session
	conn   net.Conn
	closed sync.Once
}

// Open dials the host of o as resh does (the ssh configuration applied
// first, as Run does) and opens the session's four streams. Env's zero
// fields take the process's own (Stdin and Dir are not used). Notices and
// errors printed on env.Stderr (new host key, reconnection, the waiting
// line) are prefixed "name: " instead of "resh: ". Open's errors are for
// the user, without a prefix.
func Open(ctx context.Context, o *Options, env Env, name string) (*Session, error) {
	if env.Stderr == nil {
		env.Stderr = os.Stderr
	}
	if env.Stdout == nil {
		env.Stdout = os.Stdout
	}
	if env.Environ == nil {
		env.Environ = os.Environ()
	}
	stderr := env.Stderr
	if name != "resh" {
		stderr = renamer{w: env.Stderr, prefix: []byte(name + ": ")}
	}
	r := &runner{o: o, env: env, stderr: &syncWriter{w: stderr}, start: time.Now(), restore: func() {}}
	if err := o.resolve(lookupEnv(env.Environ, "HOME"), func(format string, args ...any) { r.debugf(1, format, args...) }); err != nil {
		return nil, err
	}
	_, stderrTerm := terminalFD(env.Stderr)
	sess, conn, err := r.connect(ctx, stderrTerm)
	if err != nil {
		return nil, err
	}
	st, err := r.openStreams(sess)
	if err != nil {
		r.closeSession(sess, conn)
		return nil, err
	}
	r.control = st.control
	return &Session{Control: st.control, Stdin: st.stdin, Stdout: st.stdout, Stderr: st.stderr, r: r, sess: sess, conn: conn}, nil
}

// Send writes one message on the control stream; sends from several
// goroutines are serialised.
func (s *Session) Send(t proto.Type, v any) error { return s.r.send(t, v) }

// AwaitStart reads the control stream until Started, as resh does after
// Hello: a master's Queued messages show the waiting line on a terminal
// (and lift the start timeout), a signal among sigs (INT, TERM, HUP, QUIT)
// while queued ends the wait, an Error becomes an error carrying its
// message.
func (s *Session) AwaitStart(sigs <-chan os.Signal) (proto.Started, error) {
	_, stderrTerm := terminalFD(s.r.env.Stderr)
	return s.r.awaitStart(s.Control, sigs, false, -1, false, stderrTerm)
}

// Fingerprint is the fingerprint of the key the session presented
// (SHA256:...), as the server knows its client; "" with -insecure.
func (s *Session) Fingerprint() string {
	if s.r.identity == nil {
		return ""
	}
	return auth.Fingerprint(auth.PublicKey(s.r.identity))
}

// ErrOutput is the writer for the program's stderr: env.Stderr,
// serialised with the session's notices and never renamed.
func (s *Session) ErrOutput() io.Writer { return plainStderr{s.r} }

// Lost explains a session that ended early (a failed write, an early end
// of the control stream): the connection's own error when it has one
// (a refused key, tampering, a server gone), else err.
func (s *Session) Lost(err error) error { return s.r.lost(err) }

// Close ends the session as resh does when it leaves: drained while the
// connection is up, abandoned when it is lost or after CloseGrace. Later
// calls do nothing.
func (s *Session) Close() { s.closed.Do(func() { s.r.closeSession(s.sess, s.conn) }) }

// plainStderr writes to the process's stderr under the notices' lock,
// without renaming.
type plainStderr struct{ r *runner }

func (p plainStderr) Write(b []byte) (int, error) {
	p.r.stderr.mu.Lock()
	defer p.r.stderr.mu.Unlock()
	return p.r.env.Stderr.Write(b)
}

// renamer replaces the "resh: " that starts resh's notices (after a
// carriage return, for the waiting line) by another program's prefix.
type renamer struct {
	w      io.Writer
	prefix []byte
}

func (n renamer) Write(b []byte) (int, error) {
	const resh = "resh: "
	i := 0
	if len(b) > 0 && b[0] == '\r' {
		i = 1
	}
	if !strings.HasPrefix(string(b[i:]), resh) {
		return n.w.Write(b)
	}
	out := bytes.Join([][]byte{b[:i], n.prefix, b[i+len(resh):]}, nil)
	if _, err := n.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}
