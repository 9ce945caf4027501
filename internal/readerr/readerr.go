// Package readerr keeps the first error a connection's Read returned: a
// multiplexer above it (yamux) reports a lost session without its cause,
// and the cause (the peer refused the key, the session expired) is what a
// user is told.
package readerr

import (
	"net"
	"sync"
)

// Conn is a net.Conn that remembers the first error its Read returned.
type Conn struct {
	net.Conn
	mu   sync.Mutex
	rerr error
}

// New wraps c.
func New(c net.Conn) *Conn { return &Conn{Conn: c} }

// Read reads from the connection, remembering its first error.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.mu.Lock()
		if c.rerr == nil {
			c.rerr = err
		}
		c.mu.Unlock()
	}
	return n, err
}

// Err returns the first error Read returned, or nil.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rerr
}
