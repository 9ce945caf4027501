package executor

import (
	"context"
	"errors"
	"sync"
	"time"

	"resh/cluster"
	"resh/proto"
)

// closeWait bounds how long closing a link waits for the master to
// acknowledge what was written on it (the Leave), before abandoning it.
const closeWait = 5 * time.Second

// errLinkClosed is a link that ended without a read error: the master
// closed it (it shut down, or a new Join under this name replaced it).
var errLinkClosed = errors.New("the master closed the link")

// serve runs a joined link until ctx is done (then it leaves: the
// sessions are hung up, Leave is sent, the link closed; it returns nil)
// or the link is lost (it returns why). Sessions accepted on a lost link
// end on their own, their streams gone; serve does not wait for them.
func (e *executor) serve(ctx context.Context, l *link) error {
	stopLoad := make(chan struct{})
	var loads, wg sync.WaitGroup
	var offers sync.WaitGroup // one per offer being answered
	loads.Add(1)
	go func() { defer loads.Done(); e.reportLoad(l, stopLoad) }()
	wg.Add(2)
	go func() { defer wg.Done(); e.acceptOffers(l, &offers) }()
	go func() { defer wg.Done(); e.readControl(l) }()

	var err error
	select {
	case <-ctx.Done():
		close(stopLoad)
		loads.Wait()
		e.leave(l)
	case <-l.mux.CloseChan():
		close(stopLoad)
		loads.Wait()
		err = errLinkClosed
		if cause := l.rec.Err(); cause != nil {
			err = cause
		}
	}
	l.close()
	wg.Wait()
	offers.Wait()
	return err
}

// leave hangs up the sessions, waits for their clients to get their
// commands' exit, tells the master that this executor leaves and closes
// the link. Offers are refused (leaving) from the start. Leave comes last:
// a master may end the link, and the sessions still on it, as soon as it
// reads it. Sessions that do not end within the shutdown grace (5 s) and
// a second are cut by closing the link under them.
func (e *executor) leave(l *link) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.shutdown()
	}()
	t := time.NewTimer(e.h.grace + time.Second)
	defer t.Stop()
	select {
	case <-done:
		if err := l.send(cluster.TypeLeave, cluster.Leave{Reason: "shutting down"}); err != nil {
			e.log.Debug("reshd: cannot send Leave to the master", "master", e.cfg.Master, "err", err)
		} else {
			e.log.Info("reshd: left the master", "master", e.cfg.Master)
		}
	case <-t.C:
		e.log.Warn("reshd: sessions still running at shutdown: closing the link under them", "master", e.cfg.Master, "tasks", e.tasks())
	}
	l.close()
	<-done
}

// readControl reads the control stream after Welcome. The master sends
// nothing more on it but may end it with an Error; when it ends, the link
// is over.
func (e *executor) readControl(l *link) {
	defer func() { _ = l.mux.Close() }()
	for {
		t, body, err := proto.ReadMessage(l.control)
		if err != nil {
			return
		}
		if t == proto.TypeError {
			var m proto.Error
			if proto.Decode(body, &m) == nil {
				e.log.Warn("reshd: the master says: "+m.Message, "master", e.cfg.Master)
				continue
			}
		}
		e.log.Debug("reshd: unexpected message on the link's control stream, ignored", "master", e.cfg.Master, "type", t)
	}
}

// send writes one message on the control stream.
func (l *link) send(t proto.Type, v any) error {
	l.ctrlMu.Lock()
	defer l.ctrlMu.Unlock()
	return proto.WriteMessage(l.control, t, v)
}

// close closes the link: its streams (so the sessions still on it end),
// yamux, and the connection below, which drains what was written for up
// to closeWait, then is abandoned.
func (l *link) close() {
	l.closed.Do(l.closeNow)
}

func (l *link) closeNow() {
	if !attached(l.conn) {
		// Its transport is down: nothing written could be delivered
		// before the link's resume timeout.
		abort(l.conn)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if l.control != nil { // nil if the join failed before it opened
			_ = l.control.Close()
		}
		_ = l.mux.Close() // closes l.rec, and the connection
		_ = l.conn.Close()
	}()
	t := time.NewTimer(closeWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		abort(l.conn)
		<-done
	}
}
