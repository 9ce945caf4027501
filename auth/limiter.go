package auth

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Limiter penalises the clients that fail to authenticate, and only them.
// It never delays a handshake before the client's key is known: clients
// behind one address (a NAT, a bastion) share it with whoever fails there,
// and a legitimate client must not pay for a stranger. Instead the refusal
// of a failing client is delayed (a tarpit): after N recent failures from
// its address, the next refusal waits 100ms·2^(N-1), at most 5s, so a
// client trying keys one after the other tries few. At most 8 refusals per
// address, and 256 in all, wait at once; the others are refused at once,
// so that a flood of concurrent failures holds no more than that. A failure
// is forgotten a minute after its address's last one; a success forgives
// nothing, as it may come from someone else behind the same address.
// Resumes of connection sessions never reach the Limiter: they are proved
// by the key exported from the session's TLS handshake, not by a new one.
//
// Refusals are logged without flooding: the first refusal of a key from an
// address at Warn, then, every 30s while refusals go on, one Warn line per
// address counting the refusals not logged, as sshd's "N more attempts".
type Limiter struct {
	mu        sync.Mutex
	hosts     map[string]*failures
	tarpits   int // refusals waiting now, all addresses
	lastPrune time.Time
	logger    *slog.Logger
	summary   *time.Timer // pending summary of the refusals not logged
	now       func() time.Time
	after     func(time.Duration, func()) *time.Timer
}

// failures is what the Limiter remembers of one address.
type failures struct {
	n       int       // recent failures
	last    time.Time // of the last one
	tarpits int       // refusals waiting now
	logged  map[string]bool
	quiet   int             // refusals not logged since the last summary
	keys    map[string]bool // the keys of those refusals
}

// Limiter parameters.
const (
	limitBase     = 100 * time.Millisecond
	limitMax      = 5 * time.Second
	limitForgive  = time.Minute
	limitEntries  = 4096 // most addresses remembered
	limitTarpits  = 8    // refusals waiting at once, per address
	limitTarpitsG = 256  // refusals waiting at once, in all
	limitKeys     = 16   // keys remembered as logged, per address
	limitSummary  = 30 * time.Second
)

// NewLimiter returns an empty Limiter. ServerTLS gives it its logger.
func NewLimiter() *Limiter {
	return &Limiter{
		hosts:  map[string]*failures{},
		logger: slog.New(slog.DiscardHandler),
		now:    time.Now,
		after:  time.AfterFunc,
	}
}

func (l *Limiter) setLogger(logger *slog.Logger) {
	if l == nil || logger == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.logger = logger
}

// refuse records a failed authentication from host (the client's address
// without its port) with key (a fingerprint, or a word saying why there is
// none), logs it unless that key from that address was logged already (msg
// and args: the Warn line), and then waits the tarpit delay, or until ctx
// is done.
func (l *Limiter) refuse(ctx context.Context, host, key, msg string, args ...any) {
	if l == nil {
		return
	}
	d, logIt := l.fail(host, key)
	if logIt {
		l.logger.Warn(msg, args...)
	}
	if d <= 0 {
		return
	}
	defer l.untarpit(host)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// fail counts a failure and returns the tarpit delay of its refusal (0: at
// once; otherwise the caller must call untarpit) and whether to log it.
func (l *Limiter) fail(host, key string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.prune(now)
	f := l.hosts[host]
	if f == nil || now.Sub(f.last) >= limitForgive {
		if f != nil && f.quiet > 0 {
			l.flushLocked() // the old counts belong to the old run
		}
		f = &failures{logged: map[string]bool{}, keys: map[string]bool{}, tarpits: tarpitsOf(f)}
		l.hosts[host] = f
	}
	d := tarpit(f.n)
	f.n++
	f.last = now
	if d > 0 && (f.tarpits >= limitTarpits || l.tarpits >= limitTarpitsG) {
		d = 0 // enough of this address's refusals wait already
	}
	if d > 0 {
		f.tarpits++
		l.tarpits++
	}
	if !f.logged[key] && len(f.logged) < limitKeys {
		f.logged[key] = true
		return d, true
	}
	f.quiet++
	if len(f.keys) < limitKeys {
		f.keys[key] = true
	}
	if l.summary == nil {
		l.summary = l.after(limitSummary, l.flush)
	}
	return d, false
}

func tarpitsOf(f *failures) int {
	if f == nil {
		return 0
	}
	return f.tarpits
}

func (l *Limiter) untarpit(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tarpits--
	if f := l.hosts[host]; f != nil && f.tarpits > 0 {
		f.tarpits--
	}
}

// flush logs one line per address whose refusals were not logged.
func (l *Limiter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
}

func (l *Limiter) flushLocked() {
	if l.summary != nil {
		l.summary.Stop()
		l.summary = nil
	}
	hosts := make([]string, 0, len(l.hosts))
	for h, f := range l.hosts {
		if f.quiet > 0 {
			hosts = append(hosts, h)
		}
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		f := l.hosts[h]
		l.logger.Warn("reshd: refused more clients whose keys are not authorized (repeats not logged one by one)",
			"host", h, "refusals", f.quiet, "keys", len(f.keys), "next_delay", tarpit(f.n))
		f.quiet = 0
		clear(f.keys)
	}
}

// tarpit is the delay of a refusal after n recent failures: none after
// none, then 100ms·2^(n-1), at most 5s.
func tarpit(n int) time.Duration {
	if n == 0 {
		return 0
	}
	d := limitBase
	for i := 1; i < n && d < limitMax; i++ {
		d *= 2
	}
	return min(d, limitMax)
}

// prune drops forgiven entries once a minute, or when the map is full; if
// it is still full, it drops the oldest entry.
func (l *Limiter) prune(now time.Time) {
	if now.Sub(l.lastPrune) < limitForgive && len(l.hosts) < limitEntries {
		return
	}
	l.lastPrune = now
	var oldest string
	for h, f := range l.hosts {
		if now.Sub(f.last) >= limitForgive && f.tarpits == 0 && f.quiet == 0 {
			delete(l.hosts, h)
		} else if oldest == "" || f.last.Before(l.hosts[oldest].last) {
			oldest = h
		}
	}
	if len(l.hosts) >= limitEntries {
		delete(l.hosts, oldest)
	}
}

// size is the number of remembered addresses (tests).
func (l *Limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.hosts)
}
