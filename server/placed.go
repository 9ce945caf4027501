package server

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/yamux"

	"resh/auth"
	"resh/cluster"
	"resh/proto"
)

// direct reports a session handed over by ServeConn: it runs here, with no
// placement (its master placed it already).
func (ss *session) direct() bool { return ss.acc == nil }

// untilGone is a context done when the client goes (mux closes), the
// server shuts down, or cancel is called.
func (ss *session) untilGone(mux Mux) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-mux.CloseChan():
		case <-ss.srv.stopping:
		case <-ctx.Done():
		}
		cancel()
	}()
	return ctx, cancel
}

// place waits for Config.Master to place the session, telling the client
// its place in the queue meanwhile. It gives up when the client goes or
// the server shuts down.
func (ss *session) place(mux Mux, h proto.Hello) (*cluster.Placement, error) {
	ctx, cancel := ss.untilGone(mux)
	defer cancel()
	remote := ""
	if ss.acc != nil {
		remote = ss.acc.RemoteAddr().String()
	}
	task := cluster.Task{Client: remote, Command: h.Command, TTY: h.TTY, On: h.On}
	if h.Job != nil {
		task.Lang, task.Command, task.TTY = h.Job.Lang, "("+h.Job.Lang+" program "+h.Job.Name+")", false
	}
	queued := func(ahead int) {
		ss.log.Debug("reshd: session queued", "ahead", ahead)
		ss.writeControl(proto.TypeQueued, proto.Queued{Ahead: ahead})
	}
	start := time.Now()
	var (
		pl  *cluster.Placement
		err error
	)
	aside(func() { pl, err = ss.srv.cfg.Master.Place(ctx, task, queued) })
	if err != nil {
		select {
		case <-ss.srv.stopping:
			return nil, cluster.ErrClosed
		default:
		}
		return nil, err
	}
	if waited := time.Since(start); waited > time.Second {
		ss.log.Info("reshd: session placed after waiting", "executor", pl.Executor(), "waited", waited.Round(time.Millisecond))
	}
	return pl, nil
}

// relay runs the session on the remote executor that took it.
func (ss *session) relay(m Mux, st *streams, h proto.Hello, pl *cluster.Placement) {
	mux, ok := m.(*yamux.Session)
	if !ok { // a session handed over is never placed (direct)
		ss.refuse(m, "reshd: a relayed session cannot be relayed again")
		return
	}
	ss.mu.Lock()
	ss.placement = pl
	hupped := ss.hupped
	ss.mu.Unlock()
	if hupped {
		pl.Hangup()
	}
	ss.log = ss.log.With("executor", pl.Executor())
	ss.log.Info("reshd: session relayed")
	pl.Relay(cluster.ClientSession{
		Mux: mux, Control: st.control, Stdin: st.takeStdin(), Stdout: st.stdout, Stderr: st.stderr,
		Hello: h, Log: ss.log,
		Send: func(t proto.Type, body []byte) error {
			ss.ctrlMu.Lock()
			defer ss.ctrlMu.Unlock()
			return proto.WriteRaw(ss.control, t, body)
		},
	})
	ss.log.Info("reshd: session ended", "duration", time.Since(ss.start).Round(time.Millisecond))
}

// answer answers a Hello's query, then ends the session as after an
// Error (or, for an attach, as after a command's Exit).
func (ss *session) answer(mux Mux, st *streams, h proto.Hello) {
	query := h.Query
	if isJobQuery(query) {
		ss.answerJobs(mux, st, h)
		return
	}
	switch query {
	case proto.QueryExecutors:
		var list []proto.ExecutorInfo
		if m := ss.srv.cfg.Master; m != nil {
			list = m.Executors()
		}
		if list == nil {
			list = []proto.ExecutorInfo{}
		}
		ss.writeControl(proto.TypeExecutors, proto.Executors{Executors: list})
		_ = ss.control.Close()
		ss.awaitClientClose(mux)
	default:
		ss.refuse(mux, fmt.Sprintf("reshd: unknown query %q", query))
	}
}

// serveLink hands an executor's link to Config.Master, if this server
// takes executors and the peer's key is an executor's.
func (ss *session) serveLink(m Mux, ctl *yamux.Stream) {
	tc, _ := ss.conn.(*auth.Conn)
	mux, isYamux := m.(*yamux.Session)
	fp := ""
	if tc != nil {
		fp = tc.PeerFingerprint()
	}
	fail := func(msg string) {
		ss.log.Warn("reshd: executor link refused", "fingerprint", fp, "err", msg)
		_ = proto.WriteMessage(ctl, proto.TypeError, proto.Error{Message: msg})
		_ = ctl.Close()
		ss.awaitClientClose(m)
	}
	switch {
	case !ss.srv.cfg.Executors || ss.srv.cfg.Master == nil || !isYamux:
		fail("reshd: this reshd is not a master: it takes no executors (start it with -master)")
		return
	case ss.srv.cfg.TLS != nil && (tc == nil || tc.Protocol() != cluster.LinkALPN):
		fail("reshd: a client's key cannot join as an executor: executors offer the link protocol, with a key listed in the master's RESH_HOME/executors")
		return
	}
	ss.srv.mu.Lock()
	ss.isLink = true
	ss.srv.changedLocked()
	ss.srv.mu.Unlock()
	ln := cluster.Link{Mux: mux, Control: ctl, Key: fp, Abort: ss.abort}
	if ss.acc != nil {
		ln.Addr = ss.acc.RemoteAddr().String()
		ln.SetDetachTimeout = ss.acc.SetDetachTimeout
		ln.Attached = ss.acc.Attached
	}
	ss.srv.cfg.Master.ServeLink(ln)
}

// abort ends the session's connection at once, without draining.
func (ss *session) abort() {
	switch c := ss.conn.(type) {
	case *auth.Conn:
		c.Abort()
	case interface{ Abort() }:
		c.Abort()
	}
}
