package connection

import (
	"crypto/hmac"
	"fmt"
	"net"
	"sync"
	"time"
)

// Server accepts sessions from many Clients over a listener, and lets each
// resume over a new transport after a drop.
type Server struct {
	l   net.Listener
	cfg *Config

	mu       sync.Mutex
	sessions map[sessionID]*Accepted
	ended    *closedSessions       // sessions closed cleanly, for honest refusals
	total    Stats                 // summed over the sessions forgotten (stats.go)
	pending  map[net.Conn]struct{} // transports in handshake
	closed   bool
	adm      *admission // bounds unfinished handshakes (admission.go)

	acceptCh chan *Accepted
	done     chan struct{}
	failed   chan struct{}
	failErr  error
	wg       sync.WaitGroup
}

// Accepted is the server's end of a session, returned by Server.Accept.
type Accepted struct {
	*Connection
	srv    *Server
	ticket *ticket // its admission, until SetResumeKey (admission.go)
}

// Listen listens on the address and serves sessions on it.
func Listen(network, address string, cfg *Config) (*Server, error) {
	c := cfg.clone()
	if err := c.validate(); err != nil {
		return nil, err
	}
	l, err := net.Listen(network, address)
	if err != nil {
		return nil, fmt.Errorf("cannot listen: %w", err)
	}
	return newServer(l, c), nil
}

// NewServer serves sessions on any listener, for example one a test made. An
// invalid cfg makes every Accept return the validation error.
func NewServer(l net.Listener, cfg *Config) *Server {
	c := cfg.clone()
	s := newServer(l, c)
	if err := c.validate(); err != nil {
		s.fail(err)
	}
	return s
}

func newServer(l net.Listener, cfg *Config) *Server {
	s := &Server{
		l:        l,
		cfg:      cfg,
		sessions: make(map[sessionID]*Accepted),
		ended:    newClosedSessions(cfg.DetachTimeout),
		pending:  make(map[net.Conn]struct{}),
		adm:      newAdmission(admitMax, admitPerHost),
		acceptCh: make(chan *Accepted, cfg.Backlog),
		done:     make(chan struct{}),
		failed:   make(chan struct{}),
	}
	s.wg.Add(1)
	go s.serve()
	return s
}

// Addr returns the listener's address.
func (s *Server) Addr() net.Addr { return s.l.Addr() }

// Accept waits for and returns the next new session. Resumed sessions do
// not come through Accept: they continue in their Accepted.
func (s *Server) Accept() (*Accepted, error) {
	select {
	case a := <-s.acceptCh:
		return a, nil
	case <-s.done:
		return nil, ErrServerClosed
	case <-s.failed:
		return nil, s.failErr
	}
}

func (s *Server) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failErr == nil {
		s.failErr = err
		close(s.failed)
	}
}

// Close stops listening and ends every session at once, without draining
// (close each Accepted first for that). It waits for every goroutine.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.closed = true
	close(s.done)
	err := s.l.Close()
	for tr := range s.pending {
		tr.Close()
	}
	sessions := make([]*Accepted, 0, len(s.sessions))
	for _, a := range s.sessions {
		sessions = append(sessions, a)
	}
	s.mu.Unlock()
	for _, a := range sessions {
		a.finish(ErrServerClosed)
		a.wg.Wait()
	}
	s.wg.Wait()
	// Sessions never accepted end too.
	for {
		select {
		case a := <-s.acceptCh:
			a.finish(ErrServerClosed)
			a.wg.Wait()
		default:
			return err
		}
	}
}

func (s *Server) serve() {
	defer s.wg.Done()
	var b acceptBackoff
	for {
		tr, err := s.l.Accept()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if d, ok := b.failed(err, s.adm, s.cfg.Logger); ok {
				select {
				case <-time.After(d):
					continue
				case <-s.done:
					return
				}
			}
			s.fail(fmt.Errorf("accept: %w", err))
			return
		}
		b.accepted(s.cfg.Logger)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			tr.Close()
			return
		}
		s.pending[tr] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		t := s.adm.admit(hostOf(tr.RemoteAddr()), func() { tr.Close() })
		go s.handshake(tr, t)
	}
}

// handshake runs the server side of the handshake on a new transport,
// admitted with t.
func (s *Server) handshake(tr net.Conn, t *ticket) {
	defer s.wg.Done()
	ok := false
	defer func() {
		s.mu.Lock()
		delete(s.pending, tr)
		s.mu.Unlock()
		if !ok {
			s.adm.release(t)
			tr.Close()
		} else {
			s.adm.endHandshake(t)
		}
	}()
	log := s.cfg.Logger.With("remote", tr.RemoteAddr().String())
	deadline := time.Now().Add(s.cfg.HandshakeTimeout)
	_ = tr.SetDeadline(time.Now().Add(min(s.cfg.HandshakeTimeout, helloTimeout)))
	var nonce [nonceLen]byte
	randomBytes(nonce[:])
	wnd := uint32(s.cfg.RecvBuffer)
	if err := writeFrame(tr, frameServerHello, 0, wnd, append([]byte{ProtocolVersion}, nonce[:]...)); err != nil {
		log.Debug("connection: handshake: write", "err", err)
		return
	}
	d := newDecoder(tr)
	d.strict = true
	f, err := readHandshakeFrame(d, frameHello)
	if err != nil {
		log.Info("connection: handshake failed", "err", err)
		return
	}
	_ = tr.SetDeadline(deadline)
	h, err := parseHello(f.payload)
	switch {
	case err != nil:
		log.Info("connection: handshake: malformed hello")
		reject(tr, rejectMalformed, "malformed hello")
		return
	case h.version != ProtocolVersion:
		log.Info("connection: handshake: version mismatch", "client", h.version)
		reject(tr, rejectVersion, fmt.Sprintf("server speaks version %d, client %d", ProtocolVersion, h.version))
		return
	}
	if h.kind == kindNew {
		ok = s.newSession(tr, d, f.wnd, t, log)
		return
	}
	s.mu.Lock()
	a := s.sessions[h.id]
	wasClosed := s.ended.has(h.id, time.Now())
	s.mu.Unlock()
	switch {
	case a == nil && wasClosed:
		reject(tr, rejectClosed, "session closed")
		return
	case a == nil:
		log.Info("connection: resume of unknown session", "session", h.id.String())
		reject(tr, rejectUnknown, "unknown or expired session")
		return
	}
	a.mu.Lock()
	keyed, secret := a.keyed, a.secret
	w := welcome{version: ProtocolVersion, kind: kindResume, id: h.id, rcvNxt: a.rcvNxt}
	free := uint32(a.recvFree()) // the window really open, not the whole buffer
	a.mu.Unlock()
	if !keyed {
		// Secured from above but not yet keyed: nothing can prove a resume.
		log.Warn("connection: resume of a session not yet secured", "session", h.id.String())
		reject(tr, rejectSecret, "session not resumable yet")
		return
	}
	want := resumeProof(&secret, nonce[:], h.id, h.rcvNxt)
	if !hmac.Equal(want[:], h.proof[:]) {
		log.Warn("connection: resume with a wrong secret", "session", h.id.String())
		reject(tr, rejectSecret, "wrong session secret")
		return
	}
	if err := writeFrame(tr, frameWelcome, 0, free, w.append(nil)); err != nil {
		return
	}
	_ = tr.SetDeadline(time.Time{})
	d.strict = false
	if a.attach(tr, d, h.rcvNxt, f.wnd) == nil {
		ok = true
		log.Debug("connection: session resumed", "session", h.id.String())
	}
}

func (s *Server) newSession(tr net.Conn, d *decoder, peerWnd uint32, t *ticket, log interface {
	Debug(string, ...any)
}) bool {
	if len(s.acceptCh) == cap(s.acceptCh) {
		reject(tr, rejectBusy, "accept backlog full")
		return false
	}
	var id sessionID
	var secret [secretLen]byte
	randomBytes(id[:])
	w := welcome{version: ProtocolVersion, kind: kindNew, id: id, keyAbove: s.cfg.SecureAbove}
	if !w.keyAbove {
		randomBytes(secret[:])
		w.secret = secret
	}
	c := newConnection(s.cfg, "server", id, secret)
	a := &Accepted{Connection: c, srv: s, ticket: t}
	// In the table before the welcome: a client that loses this transport
	// as soon as it has the welcome resumes at once, maybe on a handshake
	// served before this one goes on (it once found no session and gave
	// up, leaving this one to wait for it).
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	s.sessions[id] = a
	s.mu.Unlock()
	if err := writeFrame(tr, frameWelcome, w.flags(), uint32(s.cfg.RecvBuffer), w.append(nil)); err != nil {
		s.mu.Lock()
		delete(s.sessions, id)
		s.mu.Unlock()
		return false
	}
	_ = tr.SetDeadline(time.Time{})
	d.strict = false
	c.onFinish = func() { s.adm.release(t); s.forget(a) }
	if s.cfg.SecureAbove {
		// Admitted until the layer above is done (SetResumeKey).
		s.adm.handOver(t, func() { a.finish(errEvicted) })
	}
	if err := c.attachFirst(tr, d, peerWnd); err != nil {
		return false
	}
	select {
	case s.acceptCh <- a:
		log.Debug("connection: new session", "session", id.String())
	default:
		a.finish(ErrServerBusy)
	}
	return true
}

// forget drops a finished session, adding its counters to the Server's
// total; a clean close is remembered for DetachTimeout so that a late
// resume is told the truth.
func (s *Server) forget(a *Accepted) {
	a.mu.Lock()
	clean := a.err == nil
	st := a.stats
	a.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[a.id] == a {
		delete(s.sessions, a.id)
		s.total.add(st)
	}
	if clean {
		s.ended.add(a.id, time.Now())
	}
}
