package cluster

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"resh/proto"
)

// attachTimeout bounds the wait for the Attach that starts a session's
// further stream on a link.
const attachTimeout = 30 * time.Second

// ErrSessionClosed is returned by a SessionMux's AcceptStream and
// OpenStream once the session ended.
var ErrSessionClosed = errors.New("the relayed session ended")

// SessionMux is one relayed session's share of an executor's link
// (spec.md §5): its anchor, the stream its Offer came on, and the link's
// streams that an Attach names it in. It offers what a yamux session
// offers to package server (server.Mux), so that a relayed session is
// served exactly as a client's, with one level of multiplexing per hop
// instead of a session nested in a stream.
type SessionMux struct {
	id       uint64
	link     *yamux.Session
	anchor   *yamux.Stream
	incoming chan *yamux.Stream
	closed   chan struct{}
	once     sync.Once
	onClose  func()

	mu      sync.Mutex
	streams []*yamux.Stream // every stream of the session, to unblock at Close
}

// newSessionMux makes the session id's mux over link, anchored on anchor;
// it closes when the anchor ends (the peer closed the session) or the link
// does. onClose runs once it closed.
func newSessionMux(link *yamux.Session, anchor *yamux.Stream, id uint64, onClose func()) *SessionMux {
	s := &SessionMux{id: id, link: link, anchor: anchor, incoming: make(chan *yamux.Stream, 8), closed: make(chan struct{}), onClose: onClose}
	go func() {
		// Nothing more comes on the anchor: its end is the session's.
		_, _ = anchor.Read(make([]byte, 1))
		_ = s.Close()
	}()
	return s
}

// AcceptStream returns the next stream the peer opened for this session.
func (s *SessionMux) AcceptStream() (*yamux.Stream, error) {
	select {
	case st := <-s.incoming:
		return st, nil
	case <-s.closed:
		return nil, ErrSessionClosed
	}
}

// OpenStream opens a stream of this session towards the peer: a link
// stream that starts with an Attach naming it.
func (s *SessionMux) OpenStream() (*yamux.Stream, error) {
	select {
	case <-s.closed:
		return nil, ErrSessionClosed
	default:
	}
	st, err := s.link.OpenStream()
	if err != nil {
		return nil, err
	}
	if err := proto.WriteMessage(st, TypeAttach, Attach{Session: s.id}); err != nil {
		_ = st.Close()
		return nil, err
	}
	if !s.track(st) {
		_ = st.Close()
		return nil, ErrSessionClosed
	}
	return st, nil
}

// track records st as the session's, unless it closed.
func (s *SessionMux) track(st *yamux.Stream) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closed:
		return false
	default:
	}
	s.streams = append(s.streams, st)
	return true
}

// deliver hands st, which the peer opened with an Attach naming this
// session, to AcceptStream. A session that closed, or that does not
// accept, closes it.
func (s *SessionMux) deliver(st *yamux.Stream) {
	if !s.track(st) {
		_ = st.Close()
		return
	}
	select {
	case s.incoming <- st:
	case <-s.closed:
		_ = st.Close()
	}
}

// Close ends the session: the anchor is closed, which tells the peer, and
// every stream of the session is closed and its reads woken.
func (s *SessionMux) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		close(s.closed)
		streams := s.streams
		s.streams = nil
		s.mu.Unlock()
		_ = s.anchor.Close()
		_ = s.anchor.SetReadDeadline(time.Unix(1, 0))
		for _, st := range streams {
			_ = st.Close()
			_ = st.SetReadDeadline(time.Unix(1, 0))
		}
		if s.onClose != nil {
			s.onClose()
		}
	})
	return nil
}

// CloseChan is closed once the session ended.
func (s *SessionMux) CloseChan() <-chan struct{} { return s.closed }

// sessions finds a link's relayed sessions by id, for the Attach that
// starts each further stream.
type sessions struct {
	mu sync.Mutex
	m  map[uint64]*SessionMux
}

func (ss *sessions) add(s *SessionMux) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.m == nil {
		ss.m = map[uint64]*SessionMux{}
	}
	ss.m[s.id] = s
}

func (ss *sessions) remove(id uint64) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, id)
}

// attach reads the Attach that starts st and hands st to its session;
// a stream for an unknown or ended session is closed.
func (ss *sessions) attach(st *yamux.Stream) error {
	_ = st.SetReadDeadline(time.Now().Add(attachTimeout))
	var a Attach
	if err := proto.Expect(st, TypeAttach, &a); err != nil {
		_ = st.Close()
		return err
	}
	_ = st.SetReadDeadline(time.Time{})
	return ss.attachTo(st, a.Session)
}

func (ss *sessions) attachTo(st *yamux.Stream, id uint64) error {
	ss.mu.Lock()
	s := ss.m[id]
	ss.mu.Unlock()
	if s == nil {
		_ = st.Close()
		return fmt.Errorf("a stream for session %d, which is not (or no longer) relayed here", id)
	}
	s.deliver(st)
	return nil
}

// Sessions is an executor's table of the sessions relayed to it over one
// link (spec.md §5), for package executor.
type Sessions struct{ s sessions }

// Accepted makes the SessionMux of the session the executor accepted on
// anchor, the stream its Offer o came on. It leaves the table when it
// closes.
func (t *Sessions) Accepted(link *yamux.Session, anchor *yamux.Stream, o Offer) *SessionMux {
	m := newSessionMux(link, anchor, o.ID, func() { t.s.remove(o.ID) })
	t.s.add(m)
	return m
}

// Attached hands a stream that the master opened with the Attach a to its
// session (its first message was read already); a stream for an unknown
// session is closed, and the error says so.
func (t *Sessions) Attached(st *yamux.Stream, a Attach) error {
	return t.s.attachTo(st, a.Session)
}
