package mitm

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"
)

// pipeListener is an in-memory net.Listener of net.Pipe connections, so
// that the proxy can be driven without sockets.
type pipeListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// pipeProxy serves a proxy on pipes: the target is handler, run on the
// far end of a pipe for each connection. It returns the proxy and a dial
// function; everything is closed and waited for at cleanup.
func pipeProxy(t *testing.T, cfg Config, handler func(net.Conn)) (*Proxy, func() net.Conn) {
	t.Helper()
	var wg sync.WaitGroup
	cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		a, b := net.Pipe()
		b.SetDeadline(time.Now().Add(testTimeout))
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer b.Close()
			handler(b)
		}()
		return a, nil
	}
	p := New(cfg)
	l := &pipeListener{ch: make(chan net.Conn), done: make(chan struct{})}
	served := make(chan error, 1)
	go func() { served <- p.Serve(l) }()
	var clients []net.Conn
	t.Cleanup(func() {
		for _, c := range clients {
			c.Close()
		}
		if err := p.Close(); err != nil {
			t.Error(err)
		}
		if err := <-served; err != nil {
			t.Error(err)
		}
		wg.Wait()
	})
	dial := func() net.Conn {
		a, b := net.Pipe()
		a.SetDeadline(time.Now().Add(testTimeout))
		clients = append(clients, a)
		select {
		case l.ch <- b:
		case <-time.After(testTimeout):
			t.Fatal("accept timed out")
		}
		return a
	}
	return p, dial
}
