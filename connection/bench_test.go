package connection

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

// benchStream measures one-way bulk throughput from w to r (the raw TCP
// baseline and the connection run the same loop).
func benchStream(b *testing.B, w io.Writer, r io.Reader, chunk int) {
	buf := make([]byte, chunk)
	done := make(chan error, 1)
	total := int64(b.N) * int64(chunk)
	go func() {
		_, err := io.CopyN(io.Discard, r, total)
		done <- err
	}()
	b.SetBytes(int64(chunk))
	b.ResetTimer()
	for range b.N {
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

func tcpPair(b *testing.B) (net.Conn, net.Conn) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	c1, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	c2, err := l.Accept()
	if err != nil {
		b.Fatal(err)
	}
	return c1, c2
}

// BenchmarkThroughput compares bulk transfer over a raw loopback TCP
// connection with the same over a session, for several frame sizes.
func BenchmarkThroughput(b *testing.B) {
	const chunk = 128 << 10
	b.Run("tcp", func(b *testing.B) {
		c1, c2 := tcpPair(b)
		defer c1.Close()
		defer c2.Close()
		benchStream(b, c1, c2, chunk)
	})
	for _, fs := range []int{16 << 10, 64 << 10, 256 << 10} {
		b.Run(fmt.Sprintf("connection/frame=%dK", fs>>10), func(b *testing.B) {
			cfg := &Config{MaxFrameSize: fs}
			srv, err := Listen("tcp", "127.0.0.1:0", cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			cl, err := Dial(context.Background(), "tcp", srv.Addr().String(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer cl.abort()
			acc, err := srv.Accept()
			if err != nil {
				b.Fatal(err)
			}
			benchStream(b, cl, acc, chunk)
		})
	}
}

// BenchmarkSessionMemory reports the heap a Server holds per idle session
// and per detached one (transport lost, waiting for its client).
func BenchmarkSessionMemory(b *testing.B) {
	const n = 200
	cfg := &Config{}
	srv, err := Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	for range b.N {
		base := heap()
		var dialers []*faultyDialer
		var clients []*Client
		var accs []*Accepted
		for range n {
			d := &faultyDialer{plan: func(int) faults { return clean() }}
			c, err := Dial(context.Background(), "tcp", srv.Addr().String(), withDialer(cfg, d))
			if err != nil {
				b.Fatal(err)
			}
			a, err := srv.Accept()
			if err != nil {
				b.Fatal(err)
			}
			// Exchange a little so that buffers have been used once.
			if _, err := c.Write([]byte("hello")); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(a, make([]byte, 5)); err != nil {
				b.Fatal(err)
			}
			dialers, clients, accs = append(dialers, d), append(clients, c), append(accs, a)
		}
		// Client and server live in this one process: halve the total for
		// the server's share (both ends hold the same state).
		idle := (heap() - base) / n / 2
		// Detach: stop the clients' redialling by ending them abruptly,
		// which leaves the server sessions waiting for a resume.
		for _, c := range clients {
			c.abort()
		}
		for _, a := range accs {
			for {
				a.mu.Lock()
				att := a.att
				a.mu.Unlock()
				if att == nil {
					break
				}
				select {
				case <-att.done:
				case <-time.After(10 * time.Second):
					b.Fatal("server never noticed the lost transport")
				}
			}
		}
		detached := (heap() - base) / n
		b.ReportMetric(float64(idle), "idle-B/session")
		b.ReportMetric(float64(detached), "detached-B/session")
		for _, a := range accs {
			a.abort()
		}
		_ = dialers
	}
}
