package executor

import (
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"resh/cluster"
	"resh/proto"
)

// offerTimeout bounds the wait for the Offer on a stream the master
// opened.
const offerTimeout = 30 * time.Second

// acceptOffers answers each stream the master opens on l, until l ends.
func (e *executor) acceptOffers(l *link, offers *sync.WaitGroup) {
	for {
		st, err := l.mux.AcceptStream()
		if err != nil {
			return
		}
		offers.Add(1)
		go func() {
			defer offers.Done()
			e.offered(l, st)
		}()
	}
}

// offered reads the message that starts st, a stream the master opened.
// An Attach hands st to the accepted session it names. An Offer is
// answered: Refuse and close, or Accept and run the session, whose anchor
// st is, on the link's streams (cluster/spec.md §5) in a goroutine of its
// own, which outlives the link if need be (it ends when st does).
func (e *executor) offered(l *link, st *yamux.Stream) {
	_ = st.SetReadDeadline(time.Now().Add(offerTimeout))
	t, body, err := proto.ReadMessage(st)
	var o cluster.Offer
	switch {
	case err != nil:
	case t == cluster.TypeAttach:
		var a cluster.Attach
		if err = proto.Decode(body, &a); err == nil {
			_ = st.SetReadDeadline(time.Time{})
			err = l.sessions.Attached(st, a)
		}
		if err != nil {
			e.log.Debug("reshd: bad stream from the master", "master", e.cfg.Master, "err", err)
			_ = st.Close()
		}
		return
	case t == cluster.TypeJobRun || t == cluster.TypeJobResume || t == cluster.TypeJobDrop:
		e.jobStream(st, t, body)
		return
	case t == cluster.TypeOffer:
		err = proto.Decode(body, &o)
	default:
		err = fmt.Errorf("%w: got type %d, want an Offer, an Attach or a job", proto.ErrUnexpected, t)
	}
	if err != nil {
		e.log.Debug("reshd: bad offer from the master", "master", e.cfg.Master, "err", err)
		_ = st.Close()
		return
	}
	_ = st.SetReadDeadline(time.Time{})
	if r, ok := e.admit(); !ok {
		e.log.Info("reshd: refused a session: "+r.Message, "master", e.cfg.Master, "offer", o.ID, "client", o.Client, "reason", r.Reason)
		_ = proto.WriteMessage(st, cluster.TypeRefuse, r)
		_ = st.Close()
		return
	}
	// In the table before Accept: the master attaches the session's
	// streams as soon as it reads it.
	mux := l.sessions.Accepted(l.mux, st, o)
	if err := proto.WriteMessage(st, cluster.TypeAccept, cluster.Accept{}); err != nil {
		_ = mux.Close()
		e.release()
		return
	}
	e.log.Debug("reshd: accepted a session", "master", e.cfg.Master, "offer", o.ID, "client", o.Client, "command", o.Command)
	remote := "master " + e.cfg.Master
	if o.Client != "" {
		remote = o.Client + " via " + remote
	}
	go func() {
		defer e.release()
		e.srv.ServeMux(mux, remote)
		_ = mux.Close()
	}()
}

// admit takes a task slot if the limits allow it, else says why not. A
// slot taken must be given back with release.
func (e *executor) admit() (cluster.Refuse, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.roomLocked(); !ok {
		return r, false
	}
	e.running++
	e.sessions.Add(1) // before shutdown's Wait: leaving is set under mu
	e.notify()
	return cluster.Refuse{}, true
}

// roomLocked reports whether the limits allow one more task (a session
// or a job), else says why not. Called with e.mu.
func (e *executor) roomLocked() (cluster.Refuse, bool) {
	switch tasks := e.running + e.jobs.Running(); {
	case e.leaving:
		return cluster.Refuse{Reason: cluster.RefuseLeaving, Message: "the executor is shutting down"}, false
	case tasks >= e.cfg.MaxTasks:
		return cluster.Refuse{Reason: cluster.RefuseFull, Message: fmt.Sprintf("%d of %d tasks running", tasks, e.cfg.MaxTasks)}, false
	case e.cfg.MaxCPU < 100:
		if cpu := e.cpu(); cpu > e.cfg.MaxCPU {
			return cluster.Refuse{Reason: cluster.RefuseCPU, Message: fmt.Sprintf("CPU at %.1f%%, above the limit of %g%%", cpu, e.cfg.MaxCPU)}, false
		}
	}
	return cluster.Refuse{}, true
}

// release gives back a task slot taken by admit.
func (e *executor) release() {
	e.mu.Lock()
	e.running--
	e.mu.Unlock()
	e.notify()
	e.sessions.Done()
}

// tasks is the number of sessions and held jobs running.
func (e *executor) tasks() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.running + e.jobs.Running()
}
