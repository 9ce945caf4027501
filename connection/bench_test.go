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
	for _, fs := range []int{16 << 10, 64 << 10, 128 << 10, 256 << 10} {
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

// BenchmarkSessionMemory reports the heap a Server holds per session: right
// after a 1 MiB transfer each way (busy), once idle for a few heartbeats
// (idle), and once its transport is gone and it waits for a resume
// (detached). Client and server live in this one process and hold the same
// state, so the busy and idle totals are halved for the server's share.
func BenchmarkSessionMemory(b *testing.B) {
	const n = 50
	cfg := &Config{HeartbeatInterval: 100 * time.Millisecond, DeadTimeout: 2 * time.Second}
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
	data := make([]byte, 1<<20)
	for range b.N {
		base := heap()
		var clients []*Client
		var accs []*Accepted
		for range n {
			c, err := Dial(context.Background(), "tcp", srv.Addr().String(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			a, err := srv.Accept()
			if err != nil {
				b.Fatal(err)
			}
			for _, p := range [][2]Peer{{c, a}, {a, c}} {
				go func() { _, _ = p[0].Write(data) }()
				if _, err := io.ReadFull(p[1], make([]byte, len(data))); err != nil {
					b.Fatal(err)
				}
			}
			clients, accs = append(clients, c), append(accs, a)
		}
		busy := (heap() - base) / n / 2
		time.Sleep(5 * cfg.HeartbeatInterval) // let the sessions go idle
		idle := (heap() - base) / n / 2
		// Detach: end the clients abruptly; the server sessions wait for a
		// resume that never comes.
		for _, c := range clients {
			c.abort()
		}
		for _, a := range accs {
			a.mu.Lock()
			att := a.att
			a.mu.Unlock()
			if att == nil {
				continue
			}
			select {
			case <-att.done:
			case <-time.After(10 * time.Second):
				b.Fatal("server never noticed the lost transport")
			}
		}
		detached := (heap() - base) / n
		b.ReportMetric(float64(busy), "busy-B/session")
		b.ReportMetric(float64(idle), "idle-B/session")
		b.ReportMetric(float64(detached), "detached-B/session")
		for _, a := range accs {
			a.abort()
		}
	}
}
