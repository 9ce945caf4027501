package cluster

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"resh/proto"
)

// joinTimeout bounds the wait for an executor's Join.
const joinTimeout = 10 * time.Second

// validName is what an executor's name may be.
var validName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Link is an executor's link as the server hands it over: its multiplexed
// session and the first stream, whose Open said KindExecutor.
type Link struct {
	Mux     *yamux.Session
	Control *yamux.Stream
	Addr    string // where it comes from
	Key     string // its key's fingerprint; "" without TLS
	// SetDetachTimeout sets how long the link's connection session is kept
	// without a transport (connection.Connection.SetDetachTimeout); nil
	// without one.
	SetDetachTimeout func(time.Duration)
	// Attached reports whether the link has a transport now; nil: always.
	Attached func() bool
	// Abort ends the link's connection at once, without waiting for its
	// peer to acknowledge what was written (a link whose transport is down
	// would hold a Close for up to its detach timeout); nil: Close only.
	Abort func()
}

// KindExecutor is the Open kind of an executor link's first stream.
const KindExecutor = "executor"

// link is the master's end of one executor's link.
type link struct {
	m        *Master
	name     string
	mux      *yamux.Session
	attachFn func() bool
	abortFn  func()
	closed   chan struct{}
	once     sync.Once
	sessions sessions // relayed over this link, by Offer ID
}

// relayed makes the SessionMux of the session the executor accepted on
// anchor.
func (l *link) relayed(anchor *yamux.Stream, id uint64) *SessionMux {
	s := newSessionMux(l.mux, anchor, id, func() { l.sessions.remove(id) })
	l.sessions.add(s)
	return s
}

// acceptAttached takes the streams the executor opens (its sessions'
// transfers) and hands each to its session, until the link ends.
func (l *link) acceptAttached() {
	for {
		st, err := l.mux.AcceptStream()
		if err != nil {
			return
		}
		go func() {
			if err := l.sessions.attach(st); err != nil {
				l.m.log.Debug("reshd: stream from an executor refused", "executor", l.name, "err", err)
			}
		}()
	}
}

func (l *link) attached() bool {
	select {
	case <-l.closed:
		return false
	default:
	}
	return l.attachFn == nil || l.attachFn()
}

// close ends the link: its relayed sessions see it lost. The connection
// is aborted, not drained: the master closes a link when it shuts down
// (its clients' sessions ended first), when a new join replaces it, or
// once it failed, and nothing left on it must reach the executor, while a
// drain would wait for an executor whose transport is down for as long as
// the link's detach timeout. The executor sees its link lost, and joins
// again.
func (l *link) close() {
	l.once.Do(func() {
		close(l.closed)
		if l.abortFn != nil {
			l.abortFn()
		}
		_ = l.mux.Close()
	})
}

// offer opens a stream, offers it the session o, and returns the stream
// if accepted, or the refusal's reason.
func (l *link) offer(o Offer) (*yamux.Stream, string, error) {
	st, r, err := l.propose(context.Background(), 0, "the offer", func(st *yamux.Stream) error {
		return proto.WriteMessage(st, TypeOffer, o)
	})
	if r != nil {
		return nil, r.Reason, nil
	}
	return st, "", err
}

// propose opens a stream, writes what write writes (an Offer, a JobRun,
// a JobResume), and reads the executor's answer within the offer timeout
// plus extra, or until ctx is done: the stream, ready for what follows,
// if accepted (Accept); the Refuse (with a reason) if not; an error when
// the stream failed, named by what.
func (l *link) propose(ctx context.Context, extra time.Duration, what string, write func(*yamux.Stream) error) (*yamux.Stream, *Refuse, error) {
	st, err := l.mux.OpenStream()
	if err != nil {
		return nil, nil, fmt.Errorf("open a stream: %w", err)
	}
	_ = st.SetDeadline(time.Now().Add(l.m.cfg.OfferTimeout + extra))
	stop := context.AfterFunc(ctx, func() { _ = st.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	fail := func(err error) (*yamux.Stream, *Refuse, error) {
		_ = st.Close()
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, err
	}
	if err := write(st); err != nil {
		return fail(fmt.Errorf("send %s: %w", what, err))
	}
	t, body, err := proto.ReadMessage(st)
	if err != nil {
		return fail(fmt.Errorf("read the answer to %s: %w", what, err))
	}
	switch t {
	case TypeAccept:
		if !stop() {
			return fail(ctx.Err())
		}
		_ = st.SetDeadline(time.Time{})
		st.Shrink()
		return st, nil, nil
	case TypeRefuse:
		var r Refuse
		_ = proto.Decode(body, &r)
		if r.Reason == "" {
			r.Reason = "refused"
		}
		_ = st.Close()
		return nil, &r, nil
	}
	return fail(fmt.Errorf("%w: got type %d in answer to %s", proto.ErrUnexpected, t, what))
}

// ServeLink serves an executor's link until it ends: it reads the Join,
// admits the executor (or says why not), and takes its Load reports. When
// the link ends, the executor is forgotten and the sessions relayed over
// it end (spec.md §6). The link is closed when ServeLink returns.
func (m *Master) ServeLink(ln Link) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		_ = ln.Mux.Close()
		return
	}
	m.links.Add(1)
	m.mu.Unlock()
	defer m.links.Done()
	if ln.SetDetachTimeout != nil {
		ln.SetDetachTimeout(m.cfg.ExecutorTimeout)
	}
	l := &link{m: m, mux: ln.Mux, attachFn: ln.Attached, abortFn: ln.Abort, closed: make(chan struct{})}
	defer l.close()
	log := m.log.With("addr", ln.Addr)
	if ln.Key != "" {
		log = log.With("fingerprint", ln.Key)
	}
	ctl := ln.Control
	_ = ctl.SetReadDeadline(time.Now().Add(joinTimeout))
	var j Join
	if err := proto.Expect(ctl, TypeJoin, &j); err != nil {
		log.Warn("reshd: executor link without a Join, closed", "err", err)
		return
	}
	_ = ctl.SetReadDeadline(time.Time{})
	refuse := func(msg string) {
		log.Warn("reshd: executor refused", "name", j.Name, "err", msg)
		_ = proto.WriteMessage(ctl, proto.TypeError, proto.Error{Message: msg})
		_ = ctl.Close()
		// Let the Error reach it before the link closes.
		t := time.NewTimer(time.Second)
		defer t.Stop()
		select {
		case <-ln.Mux.CloseChan():
		case <-t.C:
		}
	}
	if msg := checkJoin(j); msg != "" {
		refuse(msg)
		return
	}
	l.name = j.Name
	e := &executor{
		name: j.Name, addr: ln.Addr, key: ln.Key, link: l, maxTasks: j.MaxTasks, maxCPU: j.MaxCPU,
		languages: j.Languages, software: j.Software, since: time.Now(), reported: j.Tasks, cpu: j.CPU,
	}
	m.mu.Lock()
	var old *link
	if prev, ok := m.execs[j.Name]; ok && !prev.starting {
		switch {
		case prev.link == nil:
			m.mu.Unlock()
			refuse(fmt.Sprintf("reshd: the name %s is this master's own executor: choose another -name", j.Name))
			return
		case prev.key != ln.Key && prev.link.attached():
			m.mu.Unlock()
			refuse(fmt.Sprintf("reshd: an executor named %s is already joined from %s: choose another -name", j.Name, prev.addr))
			return
		}
		old = prev.link
	}
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.execs[j.Name] = e
	m.mu.Unlock()
	if old != nil {
		log.Info("reshd: executor joined again: its old link is closed", "name", j.Name)
		old.close()
	}
	if err := proto.WriteMessage(ctl, TypeWelcome, Welcome{Master: m.cfg.Name}); err != nil {
		log.Warn("reshd: executor lost while joining", "name", j.Name, "err", err)
		m.lost(e)
		return
	}
	go l.acceptAttached()
	log.Info("reshd: executor joined", "name", j.Name, "max_tasks", j.MaxTasks, "max_cpu", j.MaxCPU, "languages", j.Languages, "version", j.Software, "jobs", len(j.Jobs))
	m.kick()
	if m.cfg.OnJoin != nil {
		m.cfg.OnJoin(j.Name, j.Jobs)
	}

	err := m.readLoads(ctl, e)
	if errors.Is(err, errLeft) {
		// It finishes its sessions, whose Exit still comes over the link,
		// then closes it.
		log.Info("reshd: executor leaving", "name", j.Name)
		select {
		case <-ln.Mux.CloseChan():
		case <-l.closed:
		}
		m.lost(e)
		log.Info("reshd: executor left", "name", j.Name)
		return
	}
	closedHere := false
	select {
	case <-l.closed: // by the master: shutting down, or a new join
		closedHere = true
	default:
	}
	m.lost(e)
	if closedHere {
		log.Info("reshd: executor link closed", "name", j.Name)
	} else {
		log.Warn("reshd: executor lost", "name", j.Name, "err", err)
	}
}

// errLeft ends readLoads after a Leave.
var errLeft = errors.New("the executor left")

// readLoads takes e's Load reports until its link ends or it leaves.
func (m *Master) readLoads(ctl *yamux.Stream, e *executor) error {
	for {
		t, body, err := proto.ReadMessage(ctl)
		if err != nil {
			return err
		}
		ctl.Shrink()
		switch t {
		case TypeLoad:
			var ld Load
			if proto.Decode(body, &ld) != nil {
				continue
			}
			m.mu.Lock()
			e.reported, e.cpu = max(ld.Tasks, 0), ld.CPU
			e.full, e.hot = false, false
			m.mu.Unlock()
			m.kick()
		case TypeLeave:
			m.mu.Lock()
			e.leaving = true
			m.mu.Unlock()
			return errLeft
		}
	}
}

// forget removes e from the registry, unless a new join replaced it, and
// reports whether it was there while the Master is open: e is lost for
// good.
func (m *Master) forget(e *executor) bool {
	m.mu.Lock()
	gone := m.execs[e.name] == e
	if gone {
		delete(m.execs, e.name)
	}
	gone = gone && !m.closed
	m.mu.Unlock()
	e.link.close()
	m.kick()
	return gone
}

// lost forgets e, and tells Config.OnLost if it is lost for good.
func (m *Master) lost(e *executor) {
	if m.forget(e) && m.cfg.OnLost != nil {
		m.cfg.OnLost(e.name)
	}
}

// checkJoin says what is wrong with a Join, or "".
func checkJoin(j Join) string {
	switch {
	case j.Version != LinkVersion:
		return fmt.Sprintf("reshd: link protocol version mismatch: executor speaks version %d, master speaks version %d", j.Version, LinkVersion)
	case !validName.MatchString(j.Name):
		return fmt.Sprintf("reshd: bad executor name %q: 1 to 64 letters, digits, '.', '_' or '-'", j.Name)
	case j.MaxTasks < 1:
		return fmt.Sprintf("reshd: bad max_tasks %d: at least 1", j.MaxTasks)
	case j.MaxCPU < 1 || j.MaxCPU > 100:
		return fmt.Sprintf("reshd: bad max_cpu %v: 1 to 100 (percent of all cores)", j.MaxCPU)
	}
	return ""
}
