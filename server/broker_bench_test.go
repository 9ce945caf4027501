//go:build linux

package server

import (
	"context"
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"resh/cat"
	"resh/proto"
	"resh/tee"
)

// BenchmarkTransfer measures the remote half of a transfer: lcat's data
// from the client's stream into a pipe, and ltee's from a pipe to a pipe
// and the client's stream; relayed (the tool copies, and its data crosses
// the socket) and passed (reshd copies). The client is a fake that serves
// and takes the data from memory, over yamux on a socket pair (no TLS, no
// connection layer). The baselines are one more hop through user space
// between two pipes (what the tool's copy costs at the least), and
// io.Copy between two pipes (which splices). cpu-ns/B is the process's CPU
// time per byte (user and system, all goroutines: tool, reshd, client).
func BenchmarkTransfer(b *testing.B) {
	const size = 64 << 20
	b.Run("pipe-copy", func(b *testing.B) { benchPipe(b, size, false) })
	b.Run("pipe-splice", func(b *testing.B) { benchPipe(b, size, true) })
	for _, mode := range []string{"relay", "pass"} {
		b.Run("lcat-"+mode, func(b *testing.B) {
			br := startBroker(b, memClient(size))
			benchCPU(b, size, func() {
				r, w, err := os.Pipe()
				if err != nil {
					b.Fatal(err)
				}
				got := drainCount(r)
				var stdout io.Writer = w
				if mode == "relay" {
					stdout = hideFile{w}
				}
				if code := cat.Remote(context.Background(), br.path, []string{"f"}, nil, stdout, io.Discard); code != 0 {
					b.Fatalf("lcat: exit %d", code)
				}
				_ = w.Close()
				if n := <-got; n != size {
					b.Fatalf("lcat wrote %d bytes, want %d", n, size)
				}
				_ = r.Close()
			})
			check(b, br, mode)
		})
		b.Run("ltee-"+mode, func(b *testing.B) {
			br := startBroker(b, memClient(size))
			benchCPU(b, size, func() {
				inR, inW, err := os.Pipe()
				if err != nil {
					b.Fatal(err)
				}
				outR, outW, err := os.Pipe()
				if err != nil {
					b.Fatal(err)
				}
				go fill(inW, size)
				got := drainCount(outR)
				var stdin io.Reader = inR
				var stdout io.Writer = outW
				if mode == "relay" {
					stdin, stdout = hideFile{inR}, hideFile{outW}
				}
				if code := tee.Remote(context.Background(), br.path, []string{"f"}, false, stdin, stdout, io.Discard); code != 0 {
					b.Fatalf("ltee: exit %d", code)
				}
				_ = outW.Close()
				_ = inR.Close()
				if n := <-got; n != size {
					b.Fatalf("ltee wrote %d bytes to stdout, want %d", n, size)
				}
				_ = outR.Close()
			})
			check(b, br, mode)
		})
	}
}

// bufSize is the buffer of the benchmark's own copies, as large as the
// tools'.
const bufSize = 256 << 10

// check makes sure the benchmark measured the mode it says.
func check(b *testing.B, br *broker, mode string) {
	if (mode == "pass") != (br.passed.Load() > 0) || (mode == "relay") != (br.relayed.Load() > 0) {
		b.Fatalf("%s: %d passed, %d relayed", mode, br.passed.Load(), br.relayed.Load())
	}
}

func benchPipe(b *testing.B, size int64, splice bool) {
	benchCPU(b, size, func() {
		r1, w1, err := os.Pipe()
		if err != nil {
			b.Fatal(err)
		}
		r2, w2, err := os.Pipe()
		if err != nil {
			b.Fatal(err)
		}
		go fill(w1, size)
		got := drainCount(r2)
		if splice {
			_, err = io.Copy(w2, r1)
		} else {
			_, err = io.CopyBuffer(hideFile{w2}, hideFile{r1}, make([]byte, bufSize))
		}
		if err != nil {
			b.Fatal(err)
		}
		_ = w2.Close()
		_ = r1.Close()
		if n := <-got; n != size {
			b.Fatalf("copied %d bytes, want %d", n, size)
		}
		_ = r2.Close()
	})
}

// benchCPU runs op b.N times, each moving size bytes, and reports the
// process's CPU time per byte.
func benchCPU(b *testing.B, size int64, op func()) {
	b.SetBytes(size)
	cpu0 := cpuTime()
	b.ResetTimer()
	for range b.N {
		op()
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(size*int64(b.N)), "cpu-ns/B")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// fill writes size bytes to w and closes it.
func fill(w *os.File, size int64) {
	buf := make([]byte, 64<<10)
	for n := int64(0); n < size; n += int64(len(buf)) {
		if _, err := w.Write(buf[:min(int64(len(buf)), size-n)]); err != nil {
			break
		}
	}
	_ = w.Close()
}

// drainCount reads r to its end with a large buffer; the count comes on the
// channel.
func drainCount(r *os.File) <-chan int64 {
	ch := make(chan int64, 1)
	go func() {
		n, _ := io.CopyBuffer(discard{}, hideFile{r}, make([]byte, bufSize))
		ch <- n
	}()
	return ch
}

// discard is io.Discard without ReadFrom, so that the buffer given is used.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// memClient serves every transfer from memory: a read sends size bytes, a
// write is read and dropped.
func memClient(size int64) func(*yamux.Stream) {
	return func(st *yamux.Stream) {
		var open proto.TransferOpen
		if err := proto.Expect(st, proto.TypeTransferOpen, &open); err != nil {
			return
		}
		buf := make([]byte, bufSize)
		if open.Op == proto.OpRead {
			_ = proto.WriteMessage(st, proto.TypeTransferReply, proto.TransferReply{OK: true, Size: size})
			for n := int64(0); n < size; n += int64(len(buf)) {
				if _, err := st.Write(buf[:min(int64(len(buf)), size-n)]); err != nil {
					return
				}
			}
			return
		}
		_ = proto.WriteMessage(st, proto.TypeTransferReply, proto.TransferReply{OK: true, Chunks: open.Chunks})
		var r io.Reader = st
		if open.Chunks {
			r = proto.NewChunkReader(st)
		}
		n, _ := io.CopyBuffer(discard{}, r, buf)
		_ = proto.WriteMessage(st, proto.TypeTransferResult, proto.TransferResult{OK: true, Bytes: n})
	}
}
