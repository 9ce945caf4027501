package connection

import "time"

// maxClosedRemembered bounds how many cleanly closed sessions a Server
// remembers at once (about 50 bytes each). Past it the oldest is
// forgotten first: a resume of it is then refused as unknown rather than
// as closed, which is the same refusal with a vaguer reason.
const maxClosedRemembered = 1 << 17

// closedSessions remembers the sessions closed cleanly within a time, so
// that a late resume is told the session closed. Sessions close in time
// order, so the oldest are at the front of a queue: forgetting the expired
// ones costs nothing per close however many are remembered (a scan of all
// of them at each close made a server that served 1,000 short sessions a
// second spend most of its time there).
type closedSessions struct {
	keep  time.Duration
	at    map[sessionID]time.Time
	queue []closedSession // oldest first, from head
	head  int
}

type closedSession struct {
	id sessionID
	at time.Time
}

func newClosedSessions(keep time.Duration) *closedSessions {
	return &closedSessions{keep: keep, at: make(map[sessionID]time.Time)}
}

// add remembers id as closed at now, and forgets those closed more than
// keep before now (or the oldest, past maxClosedRemembered).
func (c *closedSessions) add(id sessionID, now time.Time) {
	c.expire(now)
	if len(c.at) >= maxClosedRemembered {
		c.drop()
	}
	c.at[id] = now
	c.queue = append(c.queue, closedSession{id, now})
}

// has says whether id closed cleanly less than keep before now.
func (c *closedSessions) has(id sessionID, now time.Time) bool {
	t, ok := c.at[id]
	return ok && now.Sub(t) <= c.keep
}

func (c *closedSessions) expire(now time.Time) {
	for c.head < len(c.queue) && now.Sub(c.queue[c.head].at) > c.keep {
		c.drop()
	}
}

// drop forgets the oldest, and compacts the queue once half of it is
// forgotten.
func (c *closedSessions) drop() {
	e := c.queue[c.head]
	c.queue[c.head] = closedSession{}
	c.head++
	if t, ok := c.at[e.id]; ok && t.Equal(e.at) {
		delete(c.at, e.id)
	}
	if c.head > len(c.queue)/2 && c.head > 64 {
		c.queue = append(c.queue[:0], c.queue[c.head:]...)
		c.head = 0
	}
}

// len is how many are remembered.
func (c *closedSessions) len() int { return len(c.at) }
