package mitm

import (
	"io"
	"net"
	"testing"
)

// benchChunk is the data written per benchmark operation.
const benchChunk = 1 << 20

// BenchmarkPassthrough compares a raw loopback TCP connection ("direct")
// with the same transfer through a clean proxy ("mitm"), one direction.
func BenchmarkPassthrough(b *testing.B) {
	srv := startServer(b, func(c net.Conn) {
		// The sink reads 64 KiB at a time (io.Discard alone would read
		// 8 KiB at a time and be the bottleneck).
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
		c.Write([]byte{1})
	})
	run := func(b *testing.B, addr string) {
		c := dial(b, addr)
		data := make([]byte, benchChunk)
		b.SetBytes(benchChunk)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := c.Write(data); err != nil {
				b.Fatal(err)
			}
		}
		c.CloseWrite()
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
	}
	b.Run("direct", func(b *testing.B) { run(b, srv) })
	b.Run("mitm", func(b *testing.B) {
		p := startProxy(b, Config{Target: srv})
		run(b, p.Addr().String())
	})
}

// BenchmarkMangler measures the per-byte faults without sockets.
func BenchmarkMangler(b *testing.B) {
	in := randomBytes(1<<20, 1)
	for _, c := range []struct {
		name string
		f    Faults
	}{
		{"corrupt=1e-4", Faults{Corrupt: 1e-4}},
		{"all=1e-3", Faults{Corrupt: 1e-3, Cut: 1e-3, Dup: 1e-3, Inject: 1e-3}},
		{"corrupt=0.1", Faults{Corrupt: 0.1}},
	} {
		b.Run(c.name, func(b *testing.B) {
			m := newMangler(1, 0, c.f, func(int, int64, int) {})
			out := make([]byte, 0, 2<<20)
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				out = m.process(out[:0], in)
			}
		})
	}
}
