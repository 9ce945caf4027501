package auth

import (
	"sync"
	"time"
)

// Limiter slows down the handshakes of addresses that failed to
// authenticate recently: after N recent failures the next handshake waits
// 100ms·2^(N-1), at most 5s. A failure is forgotten a minute after the last
// one, or at the address's next success.
type Limiter struct {
	mu        sync.Mutex
	fails     map[string]*failures
	lastPrune time.Time
	now       func() time.Time // tests replace the clock
}

type failures struct {
	n    int
	last time.Time
}

// Limiter parameters.
const (
	limitBase    = 100 * time.Millisecond
	limitMax     = 5 * time.Second
	limitForgive = time.Minute
	limitEntries = 4096 // most addresses remembered
)

// NewLimiter returns an empty Limiter.
func NewLimiter() *Limiter {
	return &Limiter{fails: map[string]*failures{}, now: time.Now}
}

// Delay is how long a handshake from host should wait.
func (l *Limiter) Delay(host string) time.Duration {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	f := l.fails[host]
	if f == nil || now.Sub(f.last) >= limitForgive {
		return 0
	}
	d := limitBase
	for i := 1; i < f.n && d < limitMax; i++ {
		d *= 2
	}
	return min(d, limitMax)
}

// Fail records a failed authentication from host.
func (l *Limiter) Fail(host string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.prune(now)
	f := l.fails[host]
	if f == nil || now.Sub(f.last) >= limitForgive {
		f = &failures{}
		l.fails[host] = f
	}
	f.n++
	f.last = now
}

// Succeed forgets host's failures.
func (l *Limiter) Succeed(host string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, host)
}

// prune drops forgiven entries once a minute, or when the map is full; if
// it is still full, it drops the oldest entry.
func (l *Limiter) prune(now time.Time) {
	if now.Sub(l.lastPrune) < limitForgive && len(l.fails) < limitEntries {
		return
	}
	l.lastPrune = now
	var oldest string
	for h, f := range l.fails {
		if now.Sub(f.last) >= limitForgive {
			delete(l.fails, h)
		} else if oldest == "" || f.last.Before(l.fails[oldest].last) {
			oldest = h
		}
	}
	if len(l.fails) >= limitEntries {
		delete(l.fails, oldest)
	}
}

// size is the number of remembered addresses (tests).
func (l *Limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.fails)
}
