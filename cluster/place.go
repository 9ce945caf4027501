package cluster

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
)

// Task describes a session to place, for the executors' limits and logs.
type Task struct {
	Client  string // the client's address
	Command string
	TTY     bool
	On      string // only this executor may take it (resh -on)
	Lang    string // a submitted program's language: only an executor that has it
}

// waiter is a session waiting in the queue.
type waiter struct {
	task     Task
	id       uint64
	queued   func(ahead int)
	ahead    int  // the last position told, -1 before
	offering bool // the dispatcher is offering it (under Master.mu)
	result   chan placed
	once     sync.Once
}

type placed struct {
	p   *Placement
	err error
}

func (w *waiter) finish(p *Placement, err error) {
	w.once.Do(func() { w.result <- placed{p, err} })
}

// Placement is a session placed on an executor: run it (in-process, by
// the caller) or Relay it, then call Done.
type Placement struct {
	m      *Master
	e      *executor
	id     uint64
	stream *yamux.Stream // the offered stream, a remote placement's anchor
	once   sync.Once
	relay  relay
}

// InProcess reports that the session runs in this process: the caller runs
// it itself, without Relay.
func (p *Placement) InProcess() bool { return p.e.link == nil }

// Executor names the executor that took the session.
func (p *Placement) Executor() string { return p.e.name }

// Done says that the session ended: its executor has one more free slot.
func (p *Placement) Done() {
	p.once.Do(func() {
		if p.stream != nil {
			_ = p.stream.Close()
		}
		p.m.mu.Lock()
		p.e.placed--
		p.m.mu.Unlock()
		p.m.kick()
	})
}

// Place finds an executor for the session t, waiting in the FIFO queue
// while none takes it: queued is called with the number of sessions ahead
// each time it changes (not called at all if the session is placed at
// once). It fails after Config.QueueTimeout, when ctx is done, when t.On
// names no known executor, or when the Master is closed.
func (m *Master) Place(ctx context.Context, t Task, queued func(ahead int)) (*Placement, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	if t.On != "" {
		if _, ok := m.execs[t.On]; !ok {
			err := fmt.Errorf("reshd: no executor named %q (known: %s)", t.On, m.namesLocked())
			m.mu.Unlock()
			return nil, err
		}
	}
	if t.Lang != "" {
		if err := m.langErrorLocked(t); err != nil {
			m.mu.Unlock()
			return nil, err
		}
	}
	m.nextID++
	w := &waiter{task: t, id: m.nextID, queued: queued, ahead: -1, result: make(chan placed, 1)}
	m.queue = append(m.queue, w)
	m.mu.Unlock()
	m.kick()

	timer := time.NewTimer(m.cfg.QueueTimeout)
	defer timer.Stop()
	select {
	case r := <-w.result:
		return r.p, r.err
	case <-timer.C:
		return m.abandon(w, m.timeoutError(t))
	case <-ctx.Done():
		return m.abandon(w, ctx.Err())
	}
}

// abandon takes w out of the queue, unless an offer of it is under way:
// then its outcome stands.
func (m *Master) abandon(w *waiter, err error) (*Placement, error) {
	m.mu.Lock()
	if w.offering {
		m.mu.Unlock()
		r := <-w.result
		return r.p, r.err
	}
	m.removeLocked(w)
	m.mu.Unlock()
	w.finish(nil, err)
	m.tellPositions()
	r := <-w.result
	return r.p, r.err
}

func (m *Master) removeLocked(w *waiter) bool {
	for i, q := range m.queue {
		if q == w {
			m.queue = append(m.queue[:i], m.queue[i+1:]...)
			return true
		}
	}
	return false
}

// langErrorLocked says why no executor known now could run t's language
// (a *LanguageError), or nil if one could (it may be busy: then t waits
// as any session).
func (m *Master) langErrorLocked(t Task) error {
	var have [][]string
	for _, e := range m.execs {
		if t.On != "" && e.name != t.On {
			continue
		}
		if e.has(t.Lang) {
			return nil
		}
		have = append(have, e.languages)
	}
	return &LanguageError{Lang: t.Lang, On: t.On, Have: union(have...)}
}

// namesLocked lists the executors' names, for messages.
func (m *Master) namesLocked() string {
	var names []string
	for n := range m.execs {
		names = append(names, n)
	}
	if len(names) == 0 {
		return "none"
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// timeoutError says why a session left the queue without an executor.
func (m *Master) timeoutError(t Task) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.cfg.QueueTimeout
	if t.On != "" {
		e, ok := m.execs[t.On]
		if !ok {
			return fmt.Errorf("reshd: executor %s left while the session waited for it (%v)", t.On, d)
		}
		return fmt.Errorf("reshd: executor %s did not take the session within %v: it is %s (%d of %d tasks)", t.On, d, e.state(), e.tasks(), e.maxTasks)
	}
	up := 0
	for _, e := range m.execs {
		if !e.starting && (e.link == nil || e.link.attached()) {
			up++
		}
	}
	if up == 0 {
		return fmt.Errorf("reshd: no executor took the session within %v: no executor is up", d)
	}
	if up == 1 {
		return fmt.Errorf("reshd: no executor took the session within %v: the only executor up is busy", d)
	}
	return fmt.Errorf("reshd: no executor took the session within %v: %d executors up, all busy", d, up)
}

// dispatch places queued sessions whenever an executor may have room,
// until Close.
func (m *Master) dispatch() {
	defer close(m.done)
	for {
		select {
		case <-m.stopped:
			return
		case <-m.wake:
		}
		m.dispatchQueue()
	}
}

// dispatchQueue tries every queued session, from the head, in order; one
// that cannot be placed keeps its place.
func (m *Master) dispatchQueue() {
	for i := 0; ; {
		m.mu.Lock()
		if m.closed || i >= len(m.queue) {
			m.mu.Unlock()
			break
		}
		w := m.queue[i]
		cands := m.candidatesLocked(w.task)
		w.offering = len(cands) > 0
		m.mu.Unlock()
		var p *Placement
		if len(cands) > 0 {
			p = m.offerAll(w, cands)
		}
		m.mu.Lock()
		w.offering = false
		if p != nil {
			m.removeLocked(w)
			m.mu.Unlock()
			w.finish(p, nil)
			continue
		}
		m.mu.Unlock()
		i++
	}
	m.tellPositions()
}

// candidatesLocked lists the executors that may take t, best first: most
// free task slots, then lowest CPU, then name.
func (m *Master) candidatesLocked(t Task) []*executor {
	var c []*executor
	for _, e := range m.execs {
		if (t.On == "" || e.name == t.On) && (t.Lang == "" || e.has(t.Lang)) && e.available() {
			c = append(c, e)
		}
	}
	sort.Slice(c, func(i, j int) bool {
		a, b := c[i], c[j]
		if a.free() != b.free() {
			return a.free() > b.free()
		}
		if a.cpu != b.cpu {
			return a.cpu < b.cpu
		}
		return a.name < b.name
	})
	return c
}

// offerAll offers w to each candidate in turn until one takes it.
func (m *Master) offerAll(w *waiter, cands []*executor) *Placement {
	var p *Placement
	e := m.tryEach(cands, "session", func(e *executor) (string, error) {
		p = &Placement{m: m, e: e, id: w.id}
		if e.link == nil {
			return "", nil
		}
		st, reason, err := e.link.offer(Offer{ID: w.id, Client: w.task.Client, Command: w.task.Command, TTY: w.task.TTY})
		p.stream = st
		return reason, err
	})
	if e == nil {
		return nil
	}
	return p
}

// tryEach offers a task (a session, a job: what) to each candidate in
// turn until one takes it, and returns that one, or nil. try offers it to
// e: it returns the refusal's reason, "" when e took it, or an error when
// the offer failed (a refusal too). A task slot of e is reserved while
// try runs, and kept when e took the task (give it back once the task
// ended). A refusal is taken as e's load (spec.md §4): full, above its
// CPU limit, or leaving, until its next Load.
func (m *Master) tryEach(cands []*executor, what string, try func(e *executor) (reason string, err error)) *executor {
	for _, e := range cands {
		m.mu.Lock()
		ok := !m.closed && e.available()
		if ok {
			e.placed++ // reserved while offered
		}
		m.mu.Unlock()
		if !ok {
			continue
		}
		reason, err := try(e)
		if err == nil && reason == "" {
			return e
		}
		m.mu.Lock()
		e.placed--
		switch reason {
		case RefuseFull:
			e.full = true
		case RefuseCPU:
			e.hot = true
		case RefuseLeaving:
			e.leaving = true
		}
		m.mu.Unlock()
		if err != nil {
			m.log.Warn("reshd: offer to executor failed", "executor", e.name, "task", what, "err", err)
		} else {
			m.log.Debug("reshd: executor refused a "+what, "executor", e.name, "reason", reason)
		}
	}
	return nil
}

// tellPositions tells each queued session its place if it changed.
func (m *Master) tellPositions() {
	type tell struct {
		fn    func(int)
		ahead int
	}
	var tells []tell
	m.mu.Lock()
	for i, w := range m.queue {
		if w.ahead != i {
			w.ahead = i
			if w.queued != nil {
				tells = append(tells, tell{w.queued, i})
			}
		}
	}
	m.mu.Unlock()
	for _, t := range tells {
		t.fn(t.ahead)
	}
}
