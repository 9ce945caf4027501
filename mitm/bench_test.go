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
		io.Copy(io.Discard, c)
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
