package mitm

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testTimeout bounds every wait in the tests.
const testTimeout = 20 * time.Second

// randomBytes returns n pseudo-random bytes from seed.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// report is one fault reported by a mangler.
type report struct {
	kind int
	off  int64
	n    int
}

// runMangler feeds input to a fresh mangler in chunks of size chunk and
// returns the output and the faults it reported.
func runMangler(f Faults, key uint64, input []byte, chunk int) ([]byte, []report) {
	var reps []report
	m := newMangler(key, 0, f, func(kind int, off int64, n int) {
		reps = append(reps, report{kind, off, n})
	})
	var out []byte
	for len(input) > 0 {
		n := min(chunk, len(input))
		out = m.process(out, input[:n])
		input = input[n:]
	}
	return out, reps
}

// replay rebuilds the expected output of a mangler from its input and the
// faults it reported, with the per-fault functions: an independent,
// byte-at-a-time model of the documented semantics.
func replay(t *testing.T, key uint64, input []byte, reps []report) []byte {
	t.Helper()
	var out []byte
	skipUntil := int64(-1)
	i := 0
	for k := int64(0); k < int64(len(input)); k++ {
		for ; i < len(reps) && reps[i].off == k && (reps[i].kind == kindInject || reps[i].kind == kindDup); i++ {
			r := reps[i]
			switch r.kind {
			case kindInject:
				out = injectRun(out, key, k)
			case kindDup:
				n := dupLen(key, k)
				if n > len(out) {
					n = len(out)
				}
				if r.n != n {
					t.Fatalf("dup at %d: reported %d bytes, want %d", k, r.n, n)
				}
				out = append(out, out[len(out)-n:]...)
			}
		}
		if k < skipUntil {
			continue
		}
		if i < len(reps) && reps[i].off == k && reps[i].kind == kindCut {
			if int64(reps[i].n) != cutLen(key, k) {
				t.Fatalf("cut at %d: reported %d bytes, want %d", k, reps[i].n, cutLen(key, k))
			}
			skipUntil = k + int64(reps[i].n)
			i++
			continue
		}
		if i < len(reps) && reps[i].off == k && reps[i].kind == kindCorrupt {
			out = append(out, corruptByte(key, k, input[k]))
			i++
			continue
		}
		out = append(out, input[k])
	}
	if i != len(reps) {
		t.Fatalf("%d faults reported past the model (next %+v)", len(reps)-i, reps[i])
	}
	return out
}

// count returns how many reports have the given kind.
func count(reps []report, kind int) int {
	n := 0
	for _, r := range reps {
		if r.kind == kind {
			n++
		}
	}
	return n
}

// checkMangler runs f over input in several chunk sizes and checks that the
// outputs are identical and match the replay of the reported faults.
func checkMangler(t *testing.T, f Faults, input []byte) ([]byte, []report) {
	t.Helper()
	const key = 0x1234
	out, reps := runMangler(f, key, input, 64<<10)
	for _, chunk := range []int{1, 7, 1000} {
		o, r := runMangler(f, key, input, chunk)
		if !bytes.Equal(o, out) || len(r) != len(reps) {
			t.Fatalf("chunks of %d: output differs from chunks of 64 KiB", chunk)
		}
	}
	if want := replay(t, key, input, reps); !bytes.Equal(out, want) {
		t.Fatalf("output (%d bytes) differs from the replay of %d faults (%d bytes)", len(out), len(reps), len(want))
	}
	return out, reps
}

// startServer serves handler on 127.0.0.1 and returns its address; the
// cleanup closes the listener and waits for the handlers.
func startServer(t testing.TB, handler func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			c.SetDeadline(time.Now().Add(testTimeout))
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handler(c)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// echo copies everything back, then half-closes.
func echo(c net.Conn) {
	io.Copy(c, c)
	c.(*net.TCPConn).CloseWrite()
	io.Copy(io.Discard, c)
}

// startProxy starts a proxy on 127.0.0.1 that is closed at cleanup.
func startProxy(t testing.TB, cfg Config) *Proxy {
	t.Helper()
	p, err := Start("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// dial connects to addr with a deadline for the whole test.
func dial(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(testTimeout))
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}
