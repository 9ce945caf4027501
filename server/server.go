// Package server is reshd's session serving (proto/spec.md): it accepts
// connection sessions, runs one command per session as the user running
// reshd, carries its stdin, stdout and stderr over yamux streams, and relays
// the lcat/ltee transfers of the command's RESH_SOCKET to the client.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"resh/cluster"
	"resh/connection"
	"resh/internal/version"
	"resh/lang"
	"resh/sandbox"
	"resh/scheduler"
)

// Config tunes a Server. Zero fields take their default.
type Config struct {
	// DetachTimeout is how long a session whose client lost its transport is
	// kept waiting for a resume (connection.Config.DetachTimeout). Default
	// 10 minutes.
	DetachTimeout time.Duration
	// OpenTimeout bounds the wait for the client's four streams. Default 30s.
	OpenTimeout time.Duration
	// KillGrace is how long a command may outlive the SIGHUP sent when its
	// session ends, before SIGKILL. Default 3s.
	KillGrace time.Duration
	// Logger receives one line per session and errors. Default: discard.
	Logger *slog.Logger
	// TLS, if not nil, runs TLS 1.3 above every connection session with
	// this configuration (auth.ServerTLS: reshd's host key, clients
	// admitted by authorized_keys), keying its resume from the TLS session.
	// Nil runs the session protocol straight on the connection (reshd
	// -insecure, tests).
	TLS *tls.Config
	// HandshakeTimeout bounds a new session's TLS handshake. Default 10s.
	HandshakeTimeout time.Duration
	// Guard, if not nil, is told each session's process group, to hang
	// them up if the process dies without ending them (StartGuard).
	Guard *Guard
	// Master places every session (cluster.Master): on its in-process
	// executor, run here, or relayed to a remote one. Nil: Listen makes one
	// with a single in-process executor named after the host (a standalone
	// reshd). Shutdown closes it, once the clients' sessions ended.
	Master *cluster.Master
	// Executors: the server accepts executors' links (reshd -master) and
	// hands them to Master.ServeLink. Without it, a peer that opens an
	// executor link is refused.
	Executors bool

	// Submitted programs (a Hello with Job, proto/spec.md §7; job.go).

	// Languages are the languages programs may be in (lang.Load of
	// RESH_HOME/languages over lang.Builtin), loaded once by the caller;
	// those whose tools are missing here are refused. Nil: lang.Builtin().
	Languages *lang.Set
	// JobCeiling caps the limits a program may ask for; zero fields take
	// resh/job.DefaultCeiling's (4 times the defaults).
	JobCeiling sandbox.Limits
	// JobPool, when set, is where the programs run live (§7) take their
	// sandboxes: the one pool of this reshd, shared with its durable jobs
	// and closed by its owner. Nil: each program's sandbox is built for it.
	JobPool *sandbox.Pool
	// UnsafeNoSandbox runs programs without the sandbox, with rlimits and
	// a wall timer only (reshd -unsafe-no-sandbox): for trusted programs
	// only; every verdict says so. Without it, programs are refused with
	// SANDBOX_ERROR where the sandbox cannot run.
	UnsafeNoSandbox bool
	// ExecutorName names this executor in verdicts. Default: the host's
	// name.
	ExecutorName string

	// Durable jobs (proto/spec.md §8; jobs.go).

	// Jobs serves the queries of durable jobs (submit, run, attach, jobs,
	// job, cancel). Nil: they are refused (an executor keeps no jobs).
	// The caller runs it (Scheduler.Run) and stops it.
	Jobs *scheduler.Scheduler
	// JobAdmins are the key fingerprints that see and touch every job:
	// the master's own keys (its host key, RESH_HOME/id_ed25519.pub).
	// Any other client sees only the jobs its key submitted.
	JobAdmins []string
}

func (c *Config) withDefaults() Config {
	var d Config
	if c != nil {
		d = *c
	}
	if d.OpenTimeout <= 0 {
		d.OpenTimeout = 30 * time.Second
	}
	if d.HandshakeTimeout <= 0 {
		d.HandshakeTimeout = 10 * time.Second
	}
	if d.KillGrace <= 0 {
		d.KillGrace = 3 * time.Second
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Languages == nil {
		d.Languages = lang.Builtin()
	}
	if d.ExecutorName == "" {
		d.ExecutorName, _ = os.Hostname()
	}
	return d
}

// Server serves resh sessions on one listener.
type Server struct {
	cfg    Config
	ln     *connection.Server
	poller *poller  // waits on the sessions' pipes, ptys, processes and sockets
	spawn  *spawner // starts the commands, from one thread

	mu       sync.Mutex
	closing  bool
	serving  bool
	sessions map[*session]struct{}
	wg       sync.WaitGroup // one per session goroutine
	done     chan struct{}  // closed when Serve returns
	stopping chan struct{}  // closed by Shutdown
	changed  chan struct{}  // closed and replaced by changedLocked

	closeOnce sync.Once // close's
}

// Listen listens on the TCP address addr (host:port; port 0 picks one),
// with TLS above each connection session if Config.TLS is set.
//
// Commands start with every signal at its default action and none blocked,
// whatever this process inherited: a signal it was started with ignored
// (SIGHUP under nohup) is caught by a handler that drops it from then on,
// so the process still ignores it and exec gives the commands the default.
// Listen also removes the transfer socket directories left by dead
// processes of this user (a reshd killed with -9).
func Listen(addr string, cfg *Config) (*Server, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	ccfg := &connection.Config{DetachTimeout: s.cfg.DetachTimeout, SecureAbove: s.cfg.TLS != nil}
	ln, err := connection.Listen("tcp", addr, ccfg)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("reshd: listen on %s: %w", addr, err)
	}
	s.ln = ln
	if s.cfg.Master == nil {
		host, _ := os.Hostname()
		if host == "" {
			host = "localhost"
		}
		s.cfg.Master = cluster.NewMaster(cluster.Config{Logger: s.cfg.Logger})
		s.cfg.Master.AddInProcess(host, s.cfg.Languages.NamesIn(sandbox.DefaultPath), version.Short())
	}
	return s, nil
}

// New returns a Server that listens nowhere: it runs the sessions handed to
// it by ServeConn (an executor's, relayed by its master), until Shutdown.
// It prepares commands' signals and removes stale socket directories as
// Listen does.
func New(cfg *Config) (*Server, error) {
	c := cfg.withDefaults()
	defaultSignalsForCommands()
	removeStaleSocketDirs(c.Logger)
	pl, err := newPoller()
	if err != nil {
		return nil, err
	}
	return &Server{cfg: c, poller: pl, spawn: newSpawner(), sessions: map[*session]struct{}{}, done: make(chan struct{}), stopping: make(chan struct{}), changed: make(chan struct{})}, nil
}

// close releases what New took, once (Shutdown may be called again).
func (s *Server) close() {
	s.closeOnce.Do(func() {
		s.poller.close()
		s.spawn.close()
	})
}

// ServeConn runs one session on conn, which carries the session protocol
// (yamux, proto/spec.md §1.2) directly: no connection layer of its own, no
// TLS and no placement, for conn's authentication was done by whoever
// handed it over (an executor's link to its master, cluster/spec.md §5).
// The command runs here. ServeConn returns when the session ended, and
// closes conn. remote names the client in logs. After Shutdown it closes
// conn at once.
func (s *Server) ServeConn(conn net.Conn, remote string) {
	s.serveGiven(newConnSession(s, conn, remote))
}

// Mux is what a session's streams are multiplexed by: a yamux session
// (*yamux.Session), or a relayed session's share of an executor's link
// (*cluster.SessionMux).
type Mux interface {
	AcceptStream() (*yamux.Stream, error)
	OpenStream() (*yamux.Stream, error)
	Close() error
	CloseChan() <-chan struct{}
}

// ServeMux runs one session whose streams come from mux, already
// authenticated, as ServeConn does: the session a master relayed to this
// executor, on streams of the executor's link (cluster/spec.md §5). It
// returns when the session ended, and closes mux.
func (s *Server) ServeMux(mux Mux, remote string) {
	ss := newConnSession(s, nil, remote)
	ss.given = mux
	s.serveGiven(ss)
}

// serveGiven serves a session handed over by ServeConn or ServeMux.
func (s *Server) serveGiven(ss *session) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ss.closeGiven()
		return
	}
	s.sessions[ss] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.sessions, ss)
		s.changedLocked()
		s.mu.Unlock()
		s.wg.Done()
	}()
	ss.serve()
}

// Addr returns the address the server listens on.
// A Server made by New has none: it returns nil.
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Serve accepts sessions and serves each in its own goroutine until
// Shutdown. It returns nil after Shutdown, or the error that stopped
// accepting.
func (s *Server) Serve() error {
	s.mu.Lock()
	if s.closing {
		// Shut down before it served (a caller that starts Serve in a
		// goroutine may lose the race with its own Shutdown): nothing to
		// serve.
		s.mu.Unlock()
		return nil
	}
	if s.serving {
		s.mu.Unlock()
		return errors.New("server: Serve called twice")
	}
	if s.ln == nil {
		s.mu.Unlock()
		return errors.New("server: Serve on a Server made by New: it has no listener")
	}
	s.serving = true
	s.mu.Unlock()
	defer close(s.done)
	for {
		acc, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, connection.ErrServerClosed) || s.isClosing() {
				return nil
			}
			return fmt.Errorf("reshd: accept: %w", err)
		}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			_ = acc.Close()
			continue
		}
		ss := newSession(s, acc)
		s.sessions[ss] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			ss.serve()
			s.mu.Lock()
			delete(s.sessions, ss)
			s.changedLocked()
			s.mu.Unlock()
		}()
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Shutdown stops accepting sessions, sends SIGHUP to every session's
// command (SIGKILL after Config.KillGrace), and waits until ctx is done for
// the sessions to report their commands' exit to their clients. Then it
// closes the listener, which ends every remaining session at once, and waits
// for every goroutine. It returns ctx's error if sessions had to be cut.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		close(s.stopping)
	}
	s.closing = true
	serving := s.serving
	var all []*session
	for ss := range s.sessions {
		all = append(all, ss)
	}
	s.mu.Unlock()
	for _, ss := range all {
		ss.hangup()
	}

	// Clients first: the Exit of a relayed command still comes over its
	// executor's link. Then the master (Config.Master) closes the links.
	err := s.waitClients(ctx)
	if s.cfg.Master != nil {
		s.cfg.Master.Close()
	}
	ended := make(chan struct{})
	go func() { s.wg.Wait(); close(ended) }()
	select {
	case <-ended:
	case <-ctx.Done():
		if err == nil {
			err = fmt.Errorf("reshd: shutdown: %w", ctx.Err())
		}
	}
	if s.ln != nil {
		_ = s.ln.Close()
	}
	// Sessions handed over by ServeConn have no listener to end them.
	s.mu.Lock()
	for ss := range s.sessions {
		if ss.acc == nil {
			ss.closeGiven()
		}
	}
	s.mu.Unlock()
	<-ended
	if serving {
		<-s.done
	}
	s.close()
	return err
}

// waitClients waits until no session is a client's (links remain), or ctx
// is done.
func (s *Server) waitClients(ctx context.Context) error {
	for {
		s.mu.Lock()
		n := 0
		for ss := range s.sessions {
			if !ss.isLink {
				n++
			}
		}
		ch := s.changed
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("reshd: shutdown: %w", ctx.Err())
		}
	}
}

// changedLocked wakes waitClients: a session ended or became a link.
func (s *Server) changedLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}
