package connection

import (
	"container/list"
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// Admission limits: how many transports a Server lets sit in an unfinished
// handshake (spec.md §3.2). A handshake is unfinished from the accept until
// the WELCOME or REJECT, and for a new session secured from above until
// SetResumeKey (the TLS handshake above) or the session's end.
const (
	// admitMax bounds unfinished handshakes in all. Each holds a file
	// descriptor and a goroutine (a few KB); 256 stays well below the
	// 1,024 descriptors of a default soft limit, leaving the rest to the
	// sessions, their commands' pipes and ptys.
	admitMax = 256
	// admitPerHost bounds unfinished handshakes from one address.
	admitPerHost = 64
	// helloTimeout bounds the wait for the client's HELLO, its first bytes,
	// sent as soon as it reads the SERVER_HELLO: about 100 bytes, which
	// take one round trip on any live path. The rest of the handshake keeps
	// Config.HandshakeTimeout.
	helloTimeout = 5 * time.Second
)

// errEvicted ends a session evicted before its handshake was done.
var errEvicted = errors.New("the handshake did not finish in time: dropped for newer connections")

// admission counts the unfinished handshakes of a Server. When a new
// transport would exceed a limit, the oldest unfinished handshake (from the
// same address if the address's limit is reached) is evicted: its
// transport is closed. Why the oldest, and not a random one as sshd's
// MaxStartups does: a legitimate handshake ends within a few round trips,
// a silent or slowloris one never does, so under a flood the oldest are
// nearly all the attacker's, and a legitimate client, even one sharing the
// flood's address (a NAT, or loopback), is only evicted if more than
// admitPerHost connections arrive from that address during its own
// handshake (thousands per second for a handshake of a few ms). Random
// early drop would refuse it with a probability that grows with the flood.
type admission struct {
	mu      sync.Mutex
	max     int
	perHost int
	all     list.List // of *ticket, oldest first
	hosts   map[string]*list.List
}

// ticket is one unfinished handshake.
type ticket struct {
	host    string
	evict   func() // ends the handshake: closes its transport or session
	session bool   // handed over to a session (handOver)
	inAll   *list.Element
	inHost  *list.Element
}

func newAdmission(max, perHost int) *admission {
	return &admission{max: max, perHost: perHost, hosts: map[string]*list.List{}}
}

// hostOf is the address of addr without its port.
func hostOf(addr net.Addr) string {
	if addr == nil {
		return ""
	}
	s := addr.String()
	if h, _, err := net.SplitHostPort(s); err == nil {
		return h
	}
	return s
}

// admit counts a new handshake from host, ended by evict if it has to make
// room, and makes room for it.
func (a *admission) admit(host string, evict func()) *ticket {
	t := &ticket{host: host, evict: evict}
	var out []*ticket
	a.mu.Lock()
	for hl := a.hosts[host]; hl != nil && hl.Len() >= a.perHost; hl = a.hosts[host] {
		out = append(out, a.removeLocked(hl.Front().Value.(*ticket)))
	}
	for a.all.Len() >= a.max {
		out = append(out, a.removeLocked(a.all.Front().Value.(*ticket)))
	}
	hl := a.hosts[host]
	if hl == nil {
		hl = &list.List{}
		a.hosts[host] = hl
	}
	t.inAll = a.all.PushBack(t)
	t.inHost = hl.PushBack(t)
	a.mu.Unlock()
	for _, o := range out {
		o.evict()
	}
	return t
}

// removeLocked forgets t and returns it.
func (a *admission) removeLocked(t *ticket) *ticket {
	a.all.Remove(t.inAll)
	hl := a.hosts[t.host]
	hl.Remove(t.inHost)
	if hl.Len() == 0 {
		delete(a.hosts, t.host)
	}
	t.inAll, t.inHost = nil, nil
	return t
}

// release ends t's handshake (done or failed); it is safe to call more
// than once, and after an eviction.
func (a *admission) release(t *ticket) {
	if t == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if t.inAll != nil {
		a.removeLocked(t)
	}
}

// endHandshake releases t at the end of the connection's own handshake,
// unless it was handed over to a session.
func (a *admission) endHandshake(t *ticket) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if t.inAll != nil && !t.session {
		a.removeLocked(t)
	}
}

// handOver gives t to a new session whose security layer has yet to do its
// handshake: evict ends it from now on, and release, not endHandshake,
// forgets it.
func (a *admission) handOver(t *ticket, evict func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if t.inAll != nil {
		t.session = true
		t.evict = evict
	}
}

// evictOldest ends the oldest unfinished handshake, to free its file
// descriptor; it reports false if there is none.
func (a *admission) evictOldest() bool {
	a.mu.Lock()
	front := a.all.Front()
	if front == nil {
		a.mu.Unlock()
		return false
	}
	t := a.removeLocked(front.Value.(*ticket))
	a.mu.Unlock()
	t.evict()
	return true
}

// pending is the number of unfinished handshakes (tests).
func (a *admission) pending() (all int, byHost map[string]int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	byHost = map[string]int{}
	for h, l := range a.hosts {
		byHost[h] = l.Len()
	}
	return a.all.Len(), byHost
}

// SetResumeKey installs the resume key (Connection.SetResumeKey): the
// security layer's handshake is done, and the session no longer counts
// against the Server's admission limits.
func (a *Accepted) SetResumeKey(key []byte) error {
	err := a.Connection.SetResumeKey(key)
	if err == nil {
		a.srv.adm.release(a.ticket)
	}
	return err
}

// acceptBackoff paces a Server's accept loop through errors that pass: out
// of file descriptors (EMFILE, ENFILE) and timeouts. It logs the first
// error of a burst and, when accepting works again, how many there were,
// instead of one line per attempt.
type acceptBackoff struct {
	delay  time.Duration
	errors int
	first  time.Time
}

// Accept loop backoff bounds.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = 250 * time.Millisecond
)

// failed returns how long to wait before the next Accept, or false if err
// is not one that passes. Out of descriptors, it evicts the oldest
// unfinished handshake, whose descriptor the next Accept can then use.
func (b *acceptBackoff) failed(err error, adm *admission, log *slog.Logger) (time.Duration, bool) {
	var ne net.Error
	fds := errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
	if !fds && !(errors.As(err, &ne) && ne.Timeout()) {
		return 0, false
	}
	if b.errors == 0 {
		b.first = time.Now()
		log.Warn("connection: accept failing, retrying (logged once until it recovers)", "err", err)
	}
	b.errors++
	if fds && adm.evictOldest() {
		b.delay = 0 // a descriptor was freed
		return 0, true
	}
	b.delay = min(max(2*b.delay, acceptBackoffMin), acceptBackoffMax)
	return b.delay, true
}

// accepted ends a burst of errors.
func (b *acceptBackoff) accepted(log *slog.Logger) {
	if b.errors > 0 {
		log.Warn("connection: accepting again", "failed_accepts", b.errors, "for", time.Since(b.first).Round(time.Millisecond))
	}
	*b = acceptBackoff{}
}
