package executor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"resh/auth"
	"resh/cluster"
	"resh/connection"
	"resh/internal/readerr"
	"resh/internal/version"
	"resh/proto"
)

// Bounds of a join: the first connection session's dial and TLS
// handshake, then the master's Welcome.
const (
	dialTimeout = 30 * time.Second
	joinTimeout = 30 * time.Second
)

// refusedTimeout ends a link whose redials are all refused (nothing
// listens on the master's port: the master process is gone, and the
// sessions it relayed with it) sooner than Config.Timeout, so that the
// executor joins the restarted master without waiting that long.
const refusedTimeout = 5 * time.Second

// errNotMaster is a join to a reshd that completed TLS without the link's
// application protocol: it is not a master.
var errNotMaster = errors.New("the server did not negotiate the executor protocol " + cluster.LinkALPN)

// link is one joined link to the master: the connection session (TLS
// above it unless Insecure), yamux on it, and its control stream.
type link struct {
	conn    net.Conn      // *auth.Conn or *connection.Client
	rec     *readerr.Conn // conn, remembering why reading it failed
	mux     *yamux.Session
	control *yamux.Stream

	sessions cluster.Sessions // the sessions relayed over this link

	ctrlMu sync.Mutex // serialises writes on control
	closed sync.Once  // close's work

	master      string // the master's host name, from Welcome
	joinedTasks int    // the tasks and CPU the Join reported
	joinedCPU   float64
}

// join dials the master, opens the control stream and joins. Its error
// is for diagnose.
func (e *executor) join(ctx context.Context) (*link, error) {
	conn, err := e.dial(ctx)
	if err != nil {
		return nil, err
	}
	rec := readerr.New(conn)
	l := &link{conn: conn, rec: rec}
	if err := e.hello(ctx, l); err != nil {
		if ctx.Err() != nil && l.mux != nil && attached(conn) {
			// Stopped while waiting for Welcome: the master may have
			// taken it in already. A close it sees (bounded, as a link's)
			// makes it forget the executor now; an abort would leave it
			// waiting the executor timeout for the link to come back.
			l.close()
		} else {
			// Abort first: closing yamux closes the connection, which
			// would drain, waiting for a transport that may be down
			// until the resume timeout.
			abort(conn)
			if l.mux != nil {
				_ = l.mux.Close()
			}
		}
		if cause := rec.Err(); cause != nil && !isRemote(err) {
			err = fmt.Errorf("%w (%w)", err, cause)
		}
		return nil, err
	}
	return l, nil
}

// dial opens the connection session, and TLS above it unless Insecure.
func (e *executor) dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	ccfg := &connection.Config{
		DetachTimeout:  e.cfg.Timeout,
		ResumeTimeout:  e.cfg.Timeout,
		RefusedTimeout: min(e.cfg.Timeout, refusedTimeout),
		Logger:         e.log,
		OnState:        e.onState,
	}
	if e.cfg.Insecure {
		return connection.Dial(ctx, "tcp", e.cfg.Master, ccfg)
	}
	notices := &logWriter{log: e.log, master: e.cfg.Master}
	tcfg, err := auth.ExecutorTLS(e.identity, filepath.Join(e.home, auth.KnownHostsFile), e.cfg.Master, e.cfg.KnownOnly, notices, cluster.LinkALPN)
	if err != nil {
		return nil, err
	}
	tc, err := auth.Dial(ctx, "tcp", e.cfg.Master, ccfg, tcfg)
	if err != nil {
		return nil, err
	}
	if tc.Protocol() != cluster.LinkALPN {
		abort(tc)
		return nil, errNotMaster
	}
	return tc, nil
}

// onState logs the link's transport going and coming back: a break
// shorter than Config.Timeout is only a delay.
func (e *executor) onState(ev connection.StateEvent) {
	switch {
	case ev.Connected:
		e.log.Info("reshd: the link to the master is back", "master", e.cfg.Master, "attempts", ev.Attempt)
	case ev.Attempt == 0:
		e.log.Warn("reshd: the link to the master lost its transport; resuming", "master", e.cfg.Master, "timeout", e.cfg.Timeout, "err", ev.Err)
	default:
		e.log.Debug("reshd: resuming the link to the master failed", "master", e.cfg.Master, "attempt", ev.Attempt, "err", ev.Err)
	}
}

// hello runs yamux on l's connection, opens the control stream, sends
// Open and Join, and reads Welcome.
func (e *executor) hello(ctx context.Context, l *link) error {
	mux, err := proto.Client(l.rec)
	if err != nil {
		return fmt.Errorf("executor: yamux: %w", err)
	}
	l.mux = mux
	st, err := mux.OpenStream()
	if err != nil {
		return fmt.Errorf("executor: open the control stream: %w", err)
	}
	l.control = st
	// The deadline bounds the whole exchange; ctx ending cuts it short.
	_ = st.SetDeadline(time.Now().Add(joinTimeout))
	stop := context.AfterFunc(ctx, func() { _ = st.SetDeadline(time.Now()) })
	defer stop()

	l.joinedTasks = e.tasks()
	l.joinedCPU = e.cpu()
	j := cluster.Join{
		Version:   cluster.LinkVersion,
		Name:      e.cfg.Name,
		MaxTasks:  e.cfg.MaxTasks,
		MaxCPU:    e.cfg.MaxCPU,
		Languages: e.langs,
		Software:  version.Short(),
		Tasks:     l.joinedTasks,
		CPU:       l.joinedCPU,
		Jobs:      e.jobs.Held(),
	}
	if err := proto.WriteMessage(st, proto.TypeOpen, proto.Open{Kind: "executor"}); err != nil {
		return fmt.Errorf("executor: send Open: %w", err)
	}
	if err := proto.WriteMessage(st, cluster.TypeJoin, j); err != nil {
		return fmt.Errorf("executor: send Join: %w", err)
	}
	var w cluster.Welcome
	if err := proto.Expect(st, cluster.TypeWelcome, &w); err != nil {
		return fmt.Errorf("executor: join: %w", err)
	}
	if !stop() {
		return ctx.Err()
	}
	_ = st.SetDeadline(time.Time{})
	l.master = w.Master
	return nil
}

// isRemote reports whether err is the master's Error answer to Join.
func isRemote(err error) bool {
	var re *proto.RemoteError
	return errors.As(err, &re)
}

// abort ends a connection at once, without draining.
func abort(c net.Conn) {
	if a, ok := c.(interface{ Abort() }); ok {
		a.Abort()
		return
	}
	_ = c.Close()
}

// attached reports whether c, the link's connection (TLS above it, or
// not), has a transport now.
func attached(c net.Conn) bool {
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = tc.NetConn()
	}
	if a, ok := c.(interface{ Attached() bool }); ok {
		return a.Attached()
	}
	return true
}

// logWriter turns known_hosts notices ("resh: new host H:P, key SHA256:…
// recorded in FILE") into log lines.
type logWriter struct {
	log    interface{ Info(string, ...any) }
	master string
}

func (w *logWriter) Write(p []byte) (int, error) {
	msg := strings.TrimPrefix(strings.TrimSpace(string(p)), "resh: ")
	w.log.Info("reshd: master key pinned: "+msg, "master", w.master)
	return len(p), nil
}
