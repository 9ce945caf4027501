package executor

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"resh/auth"
	"resh/cluster"
	"resh/connection"
	"resh/proto"
	"resh/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testTimeout bounds every wait for an event.
const testTimeout = 20 * time.Second

// logs records an executor's log lines, for tests to wait on.
type logs struct {
	mu    sync.Mutex
	lines []string
	more  chan struct{} // closed and replaced at each new line
}

func newLogs() *logs { return &logs{more: make(chan struct{})} }

func (l *logs) Enabled(context.Context, slog.Level) bool { return true }
func (l *logs) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logs) WithGroup(string) slog.Handler            { return l }

func (l *logs) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	if testing.Verbose() {
		fmt.Fprintln(os.Stderr, "  log:", b.String())
	}
	l.mu.Lock()
	l.lines = append(l.lines, b.String())
	close(l.more)
	l.more = make(chan struct{})
	l.mu.Unlock()
	return nil
}

// count is the number of lines holding s.
func (l *logs) count(s string) (int, chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n, l.more
}

// wait waits for n lines holding s and returns the last.
func (l *logs) wait(t *testing.T, s string, n int) string {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		got, more := l.count(s)
		if got >= n {
			l.mu.Lock()
			defer l.mu.Unlock()
			for i := len(l.lines) - 1; i >= 0; i-- {
				if strings.Contains(l.lines[i], s) {
					return l.lines[i]
				}
			}
		}
		select {
		case <-more:
		case <-deadline:
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Fatalf("no %d log lines with %q within %v; log:\n%s", n, s, testTimeout, strings.Join(l.lines, "\n"))
		}
	}
}

// fakeMaster is the master's side of the link, driven by the test: it
// accepts links, reads Open and Join, and answers Welcome (or answer's
// Error). With TLS it checks executor keys as reshd -master does
// (auth.MasterTLS), or, plain, as a reshd that is not a master.
type fakeMaster struct {
	t      *testing.T
	tls    *tls.Config // nil: -insecure
	answer func(cluster.Join) string
	links  chan *mlink
	ended  chan struct{} // if not nil, told when a link that sent Join ends

	mu    sync.Mutex
	ln    *connection.Server
	conns []net.Conn
	wg    sync.WaitGroup
}

// masterOptions chooses a fakeMaster's security.
type masterOptions struct {
	insecure  bool
	executors []ed25519.PrivateKey // keys in RESH_HOME/executors
	plain     bool                 // not a master: auth.ServerTLS, executors' keys in authorized_keys
	hostKey   ed25519.PrivateKey   // default: a new one
}

func newMaster(t *testing.T, o masterOptions) *fakeMaster {
	t.Helper()
	m := &fakeMaster{t: t, links: make(chan *mlink, 16)}
	if !o.insecure {
		home := t.TempDir()
		key := o.hostKey
		if key == nil {
			_, key, _ = ed25519.GenerateKey(nil)
		}
		var lines []byte
		for _, k := range o.executors {
			lines = append(lines, auth.AuthorizedLine(auth.PublicKey(k), "test")...)
		}
		ak, ex := filepath.Join(home, auth.AuthorizedKeysFile), filepath.Join(home, auth.ExecutorsFile)
		var err error
		if o.plain {
			require.NoError(t, os.WriteFile(ak, lines, 0o600))
			m.tls, err = auth.ServerTLS(key, ak, nil, nil)
		} else {
			require.NoError(t, os.WriteFile(ex, lines, 0o600))
			m.tls, err = auth.MasterTLS(key, ak, ex, cluster.LinkALPN, nil, nil)
		}
		require.NoError(t, err)
	}
	m.listen("127.0.0.1:0")
	t.Cleanup(m.stop)
	return m
}

// addr is where the master listens.
func (m *fakeMaster) addr() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ln.Addr().String()
}

// listen starts listening on addr.
func (m *fakeMaster) listen(addr string) {
	m.t.Helper()
	ln, err := connection.Listen("tcp", addr, &connection.Config{SecureAbove: m.tls != nil, DetachTimeout: testTimeout})
	require.NoError(m.t, err)
	m.mu.Lock()
	m.ln = ln
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for {
			acc, err := ln.Accept()
			if err != nil {
				return
			}
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				m.admit(acc)
			}()
		}
	}()
}

// stop ends the master at once: its listener and every link, as a master
// process killed would (its port then refuses).
func (m *fakeMaster) stop() {
	m.mu.Lock()
	ln := m.ln
	conns := m.conns
	m.conns = nil
	m.mu.Unlock()
	_ = ln.Close()
	for _, c := range conns {
		abort(c)
	}
	m.wg.Wait()
}

// restart is stop, then listening on the same port again.
func (m *fakeMaster) restart() {
	addr := m.addr()
	m.stop()
	m.listen(addr)
}

// admit runs one link's TLS and join.
func (m *fakeMaster) admit(acc *connection.Accepted) {
	var conn net.Conn = acc
	if m.tls != nil {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		tc, err := auth.Server(ctx, acc, m.tls)
		cancel()
		if err != nil {
			return // refused, and closed
		}
		conn = tc
	}
	m.mu.Lock()
	m.conns = append(m.conns, conn)
	m.mu.Unlock()
	mux, err := proto.Server(conn)
	if err != nil {
		abort(conn)
		return
	}
	l := &mlink{conn: conn, mux: mux, msgs: make(chan linkMsg, 64)}
	st, err := mux.AcceptStream()
	if err != nil {
		_ = mux.Close()
		return
	}
	l.control = st
	var o proto.Open
	if err := proto.Expect(st, proto.TypeOpen, &o); err != nil || o.Kind != "executor" {
		_ = mux.Close()
		return
	}
	if err := proto.Expect(st, cluster.TypeJoin, &l.join); err != nil {
		_ = mux.Close()
		return
	}
	if m.ended != nil {
		defer func() { m.ended <- struct{}{} }()
	}
	if m.answer != nil {
		if msg := m.answer(l.join); msg != "" {
			_ = proto.WriteMessage(st, proto.TypeError, proto.Error{Message: msg})
			_ = mux.Close()
			return
		}
	}
	if err := proto.WriteMessage(st, cluster.TypeWelcome, cluster.Welcome{Master: "fake"}); err != nil {
		_ = mux.Close()
		return
	}
	m.links <- l
	defer close(l.msgs)
	for {
		t, body, err := proto.ReadMessage(st)
		if err != nil {
			return
		}
		msg := linkMsg{t: t}
		switch t {
		case cluster.TypeLoad:
			_ = proto.Decode(body, &msg.load)
		case cluster.TypeLeave:
			_ = proto.Decode(body, &msg.leave)
		}
		l.msgs <- msg
	}
}

// link waits for the next joined link.
func (m *fakeMaster) link() *mlink {
	m.t.Helper()
	select {
	case l := <-m.links:
		return l
	case <-time.After(testTimeout):
		m.t.Fatalf("no executor joined within %v", testTimeout)
		return nil
	}
}

// mlink is one executor's link, as the master sees it.
type mlink struct {
	conn    net.Conn
	mux     *yamux.Session
	control *yamux.Stream
	join    cluster.Join
	msgs    chan linkMsg // Load and Leave, as they come; closed at the end
}

// linkMsg is a message the executor sent on the control stream after
// Welcome.
type linkMsg struct {
	t     proto.Type
	load  cluster.Load
	leave cluster.Leave
}

// attach opens a further stream of the accepted session id.
func (l *mlink) attach(t *testing.T, id uint64) *yamux.Stream {
	t.Helper()
	st, err := l.mux.OpenStream()
	require.NoError(t, err)
	require.NoError(t, proto.WriteMessage(st, cluster.TypeAttach, cluster.Attach{Session: id}))
	return st
}

// offer opens a stream, writes o, and reads the answer: Accept (the
// stream is then the session's anchor: attach its streams) or Refuse
// (returned).
func (l *mlink) offer(t *testing.T, o cluster.Offer) (*yamux.Stream, *cluster.Refuse) {
	t.Helper()
	st, err := l.mux.OpenStream()
	require.NoError(t, err)
	require.NoError(t, proto.WriteMessage(st, cluster.TypeOffer, o))
	_ = st.SetReadDeadline(time.Now().Add(testTimeout))
	typ, body, err := proto.ReadMessage(st)
	require.NoError(t, err)
	_ = st.SetReadDeadline(time.Time{})
	switch typ {
	case cluster.TypeAccept:
		return st, nil
	case cluster.TypeRefuse:
		var r cluster.Refuse
		require.NoError(t, proto.Decode(body, &r))
		_ = st.Close()
		return nil, &r
	}
	t.Fatalf("answer to Offer: type %d", typ)
	return nil, nil
}

// next waits for the next message the executor sends on the control
// stream that ok accepts, skipping the others; false when the link ended.
func (l *mlink) next(t *testing.T, what string, ok func(linkMsg) bool) linkMsg {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		select {
		case m, open := <-l.msgs:
			if !open {
				t.Fatalf("the link ended before %s", what)
			}
			if ok(m) {
				return m
			}
		case <-deadline:
			t.Fatalf("no %s within %v", what, testTimeout)
		}
	}
}

// waitTasks waits for a Load reporting n tasks.
func (l *mlink) waitTasks(t *testing.T, n int) cluster.Load {
	t.Helper()
	return l.next(t, fmt.Sprintf("Load with %d tasks", n), func(m linkMsg) bool {
		return m.t == cluster.TypeLoad && m.load.Tasks == n
	}).load
}

// waitLeave waits for Leave.
func (l *mlink) waitLeave(t *testing.T) cluster.Leave {
	t.Helper()
	return l.next(t, "Leave", func(m linkMsg) bool { return m.t == cluster.TypeLeave }).leave
}

// fakeSessions stands for server.Server: each session echoes what comes
// on each of its streams until the stream or the session ends, or
// Shutdown.
type fakeSessions struct {
	mu       sync.Mutex
	active   map[server.Mux]bool
	served   chan string // remote of each session, as it starts
	ended    chan struct{}
	shutdown bool
}

func newFakeSessions() *fakeSessions {
	return &fakeSessions{active: map[server.Mux]bool{}, served: make(chan string, 16), ended: make(chan struct{}, 16)}
}

func (f *fakeSessions) ServeMux(mux server.Mux, remote string) {
	f.mu.Lock()
	if f.shutdown {
		f.mu.Unlock()
		_ = mux.Close()
		return
	}
	f.active[mux] = true
	f.mu.Unlock()
	f.served <- remote
	var wg sync.WaitGroup
	for {
		st, err := mux.AcceptStream()
		if err != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = io.Copy(st, st)
			_ = st.Close()
		}()
	}
	_ = mux.Close()
	wg.Wait()
	f.mu.Lock()
	delete(f.active, mux)
	f.mu.Unlock()
	f.ended <- struct{}{}
}

func (f *fakeSessions) Shutdown(ctx context.Context) error {
	f.mu.Lock()
	f.shutdown = true
	for m := range f.active {
		_ = m.Close()
	}
	f.mu.Unlock()
	return nil
}

// waitEnded waits for a session to end.
func (f *fakeSessions) waitEnded(t *testing.T) {
	t.Helper()
	select {
	case <-f.ended:
	case <-time.After(testTimeout):
		t.Fatalf("no session ended within %v", testTimeout)
	}
}

// runExecutor runs an executor until the test ends (or stop).
type runExecutor struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned err
	err    error
	logs   *logs
}

func startExecutor(t *testing.T, cfg Config, h hooks) *runExecutor {
	t.Helper()
	r := &runExecutor{done: make(chan struct{}), logs: newLogs()}
	cfg.Logger = slog.New(r.logs)
	if h.minBackoff == 0 {
		h.minBackoff = 20 * time.Millisecond
	}
	if h.maxBackoff == 0 {
		h.maxBackoff = 100 * time.Millisecond
	}
	if h.languages == nil {
		h.languages = func() []string { return []string{"sh"} }
	}
	if cfg.Name == "" {
		cfg.Name = "test-exec"
	}
	var ctx context.Context
	ctx, r.cancel = context.WithCancel(context.Background())
	go func() {
		r.err = run(ctx, cfg, h)
		close(r.done)
	}()
	t.Cleanup(func() { _ = r.stop(t) })
	return r
}

// stop cancels Run's context and returns what Run returned.
func (r *runExecutor) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	return r.result(t)
}

// result waits for Run to return.
func (r *runExecutor) result(t *testing.T) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(testTimeout):
		t.Fatalf("Run did not return within %v", testTimeout)
		return nil
	}
}

// executorHome makes a RESH_HOME with a host key, returned.
func executorHome(t *testing.T) (string, ed25519.PrivateKey) {
	t.Helper()
	home := t.TempDir()
	key, _, err := auth.LoadOrCreateIdentity(filepath.Join(home, auth.HostKeyFile))
	require.NoError(t, err)
	return home, key
}
