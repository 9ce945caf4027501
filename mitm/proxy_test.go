package mitm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// sinkServer reads each connection to EOF and sends what it read on the
// returned channel, then closes.
func sinkServer(t *testing.T) (string, chan []byte) {
	ch := make(chan []byte, 16)
	addr := startServer(t, func(c net.Conn) {
		b, _ := io.ReadAll(c)
		ch <- b
	})
	return addr, ch
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testTimeout):
		t.Fatal("timed out")
		panic("unreachable")
	}
}

// roundTrip writes data and reads back as many bytes, concurrently.
func roundTrip(t *testing.T, c net.Conn, data []byte) []byte {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		errc <- err
	}()
	got := make([]byte, len(data))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	return got
}

// isReset reports whether err is a connection reset.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// expectReset reads from c until an error, which must be a reset.
func expectReset(t *testing.T, c net.Conn) {
	t.Helper()
	_, err := io.Copy(io.Discard, c)
	if !isReset(err) {
		t.Fatalf("want a connection reset, got %v", err)
	}
}

// expectRefused dials addr and expects a reset, at connect or first read.
func expectRefused(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err == nil {
		defer c.Close()
		c.SetDeadline(time.Now().Add(testTimeout))
		_, err = c.Read(make([]byte, 1))
	}
	if !isReset(err) {
		t.Fatalf("want a reset, got %v", err)
	}
}

// TestEchoEndToEnd sends 4 MiB through a clean proxy to a real echo
// server and checks the bytes, the half-close and the counters.
func TestEchoEndToEnd(t *testing.T) {
	srv := startServer(t, echo)
	p := startProxy(t, Config{Target: srv, Seed: 1})
	c := dial(t, p.Addr().String())
	data := randomBytes(4<<20, 20)
	if got := roundTrip(t, c, data); !bytes.Equal(got, data) {
		t.Fatal("echo through the proxy is not byte-exact")
	}
	c.CloseWrite()
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
		t.Fatalf("after half-close: %d bytes, %v; want EOF", len(rest), err)
	}
	c.Close()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	s := p.Stats()
	if s.Accepted != 1 || s.Active != 0 || s.Up.In != int64(len(data)) || s.Up.Out != s.Up.In ||
		s.Down.In != s.Up.In || s.Down.Out != s.Up.In {
		t.Fatalf("stats %+v", s)
	}
	if p.Seed() != 1 {
		t.Fatalf("seed %d, want 1", p.Seed())
	}
}

// TestHalfClose checks that a FIN passes through in each direction while
// the other direction keeps flowing.
func TestHalfClose(t *testing.T) {
	// The client finishes first; the server answers after its EOF.
	srv := startServer(t, func(c net.Conn) {
		b, err := io.ReadAll(c)
		if err != nil {
			return
		}
		c.Write([]byte("got " + string(b)))
	})
	p := startProxy(t, Config{Target: srv})
	c := dial(t, p.Addr().String())
	c.Write([]byte("request"))
	c.CloseWrite()
	if b, err := io.ReadAll(c); err != nil || string(b) != "got request" {
		t.Fatalf("got %q, %v", b, err)
	}

	// The server finishes first; the client keeps sending.
	done := make(chan string, 1)
	srv2 := startServer(t, func(c net.Conn) {
		c.Write([]byte("banner"))
		c.(*net.TCPConn).CloseWrite()
		b, _ := io.ReadAll(c)
		done <- string(b)
	})
	p2 := startProxy(t, Config{Target: srv2, Down: Faults{Latency: time.Millisecond}})
	c2 := dial(t, p2.Addr().String())
	if b, err := io.ReadAll(c2); err != nil || string(b) != "banner" {
		t.Fatalf("got %q, %v", b, err)
	}
	for range 100 {
		if _, err := c2.Write([]byte("more ")); err != nil {
			t.Fatalf("write after the server's FIN: %v", err)
		}
	}
	c2.CloseWrite()
	if got := recv(t, done); got != strings.Repeat("more ", 100) {
		t.Fatalf("server got %q", got)
	}
}

// TestDeterminism sends the same input through fresh proxies with the same
// seed, in writes of 1, 7 and 64 KiB bytes: the server must receive the same
// bytes, and the log must list the same faults.
func TestDeterminism(t *testing.T) {
	addr, ch := sinkServer(t)
	in := randomBytes(48<<10, 21)
	faults := Faults{Corrupt: 0.003, Cut: 0.001, Dup: 0.001, Inject: 0.001}
	var first []byte
	var firstLog string
	for _, size := range []int{64 << 10, 7, 1} {
		var log syncBuffer
		p := startProxy(t, Config{Target: addr, Seed: 77, Up: faults, Log: &log})
		c := dial(t, p.Addr().String())
		for b := in; len(b) > 0; {
			n := min(size, len(b))
			if _, err := c.Write(b[:n]); err != nil {
				t.Fatal(err)
			}
			b = b[n:]
		}
		c.CloseWrite()
		got := recv(t, ch)
		c.Close()
		p.Close()
		faultsOnly := faultLines(t, log.String())
		if first == nil {
			first, firstLog = got, faultsOnly
			if bytes.Equal(got, in) || faultsOnly == "" {
				t.Fatal("no fault injected")
			}
			continue
		}
		if !bytes.Equal(got, first) {
			t.Fatalf("writes of %d bytes: output differs", size)
		}
		if faultsOnly != firstLog {
			t.Fatalf("writes of %d bytes: fault log differs", size)
		}
	}
	// Another seed gives another result.
	p := startProxy(t, Config{Target: addr, Seed: 78, Up: faults})
	c := dial(t, p.Addr().String())
	c.Write(in)
	c.CloseWrite()
	if bytes.Equal(recv(t, ch), first) {
		t.Fatal("seeds 77 and 78 gave the same output")
	}
}

// faultLines returns the log lines of faults, without the close lines.
func faultLines(t *testing.T, log string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var l faultLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("bad log line %q: %v", sc.Text(), err)
		}
		if l.Kind != "close" {
			b.WriteString(sc.Text() + "\n")
		}
	}
	return b.String()
}

// TestLog checks the JSON log: one line per fault and a close line with
// counts and SHA-256 sums on both sides of the proxy.
func TestLog(t *testing.T) {
	addr, ch := sinkServer(t)
	var log syncBuffer
	p := startProxy(t, Config{Target: addr, Up: Faults{Corrupt: 0.01, Inject: 0.001}, Log: &log})
	c := dial(t, p.Addr().String())
	in := randomBytes(100000, 22)
	c.Write(in)
	c.CloseWrite()
	got := recv(t, ch)
	c.Close()
	p.Close()
	s := p.Stats()
	var corrupt, inject int64
	var closed *closeLine
	sc := bufio.NewScanner(strings.NewReader(log.String()))
	for sc.Scan() {
		var l closeLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		switch l.Kind {
		case "corrupt":
			corrupt++
		case "inject":
			inject++
		case "close":
			closed = &l
		default:
			t.Fatalf("unexpected line %s", sc.Text())
		}
	}
	if corrupt != s.Up.Corrupt || inject != s.Up.Inject || corrupt == 0 || inject == 0 {
		t.Fatalf("log has %d corrupt and %d inject, stats %+v", corrupt, inject, s.Up)
	}
	sum := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
	want := dirSummary{In: int64(len(in)), Out: int64(len(got)), InSHA256: sum(in), OutSHA256: sum(got)}
	if closed == nil || closed.Conn != 1 || closed.Up != want || closed.Down.In != 0 {
		t.Fatalf("close line %+v, want up %+v", closed, want)
	}
}

// TestDropAfterAndRefuse resets a connection after 1000 bytes, then checks
// that the next two connection attempts are refused and the third works.
func TestDropAfterAndRefuse(t *testing.T) {
	serverErr := make(chan error, 4)
	srv := startServer(t, func(c net.Conn) {
		_, err := io.Copy(c, c)
		serverErr <- err
	})
	p := startProxy(t, Config{Target: srv, Up: Faults{DropAfter: 1000}, Refuse: 2})
	c := dial(t, p.Addr().String())
	if _, err := c.Write(make([]byte, 3000)); err != nil {
		t.Fatal(err)
	}
	expectReset(t, c)
	if err := recv(t, serverErr); !isReset(err) {
		t.Fatalf("server side: want a reset, got %v", err)
	}
	for range 2 {
		expectRefused(t, p.Addr().String())
	}
	p.Heal()
	ok := dial(t, p.Addr().String())
	if got := roundTrip(t, ok, []byte("healed")); string(got) != "healed" {
		t.Fatalf("got %q", got)
	}
	// The echo can come back before the pump counts what it wrote: the
	// counters are final once the proxy is closed.
	ok.Close()
	p.Close()
	s := p.Stats()
	if s.Dropped != 1 || s.Refused != 2 || s.Accepted != 4 || s.Up.Drop != 1 || s.Up.Out != 1000+6 {
		t.Fatalf("stats %+v", s)
	}
}

// TestSetRefuse refuses attempts on demand.
func TestSetRefuse(t *testing.T) {
	srv := startServer(t, echo)
	p := startProxy(t, Config{Target: srv})
	p.SetRefuse(1)
	expectRefused(t, p.Addr().String())
	c := dial(t, p.Addr().String())
	if got := roundTrip(t, c, []byte("x")); string(got) != "x" {
		t.Fatalf("got %q", got)
	}
}

// TestDropEvery resets a connection after a duration.
func TestDropEvery(t *testing.T) {
	srv := startServer(t, echo)
	p := startProxy(t, Config{Target: srv, Down: Faults{DropEvery: 50 * time.Millisecond}})
	start := time.Now()
	c := dial(t, p.Addr().String())
	roundTrip(t, c, []byte("ping"))
	expectReset(t, c)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("reset after %v, want at least 50ms", d)
	}
	if s := p.Stats(); s.Dropped != 1 || s.Down.Drop != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestDropAll resets every live connection.
func TestDropAll(t *testing.T) {
	srv := startServer(t, echo)
	p := startProxy(t, Config{Target: srv})
	c1, c2 := dial(t, p.Addr().String()), dial(t, p.Addr().String())
	roundTrip(t, c1, []byte("1"))
	roundTrip(t, c2, []byte("2"))
	p.DropAll()
	expectReset(t, c1)
	expectReset(t, c2)
	if s := p.Stats(); s.Dropped != 2 {
		t.Fatalf("stats %+v", s)
	}
}

// TestStall black-holes a direction after 100 bytes, then heals it.
func TestStall(t *testing.T) {
	srv := startServer(t, echo)
	p := startProxy(t, Config{Target: srv, Up: Faults{StallAfter: 100}})
	c := dial(t, p.Addr().String())
	data := randomBytes(300, 23)
	c.Write(data)
	got := make([]byte, 300)
	if _, err := io.ReadFull(c, got[:100]); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := c.Read(got[100:]); !errors.Is(err, syscall.EAGAIN) && !isTimeout(err) {
		t.Fatalf("read %d bytes past the stall (%v)", n, err)
	}
	if s := p.Stats(); s.Up.Stall != 1 || s.Up.Out != 100 {
		t.Fatalf("stats %+v", s)
	}
	c.SetReadDeadline(time.Now().Add(testTimeout))
	p.SetFaults(Faults{}, Faults{})
	if _, err := io.ReadFull(c, got[100:]); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("data lost across the stall")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestLatency checks a generous lower bound of the round trip.
func TestLatency(t *testing.T) {
	srv := startServer(t, echo)
	p := startProxy(t, Config{Target: srv,
		Up:   Faults{Latency: 60 * time.Millisecond, Jitter: 10 * time.Millisecond},
		Down: Faults{Latency: 60 * time.Millisecond}})
	c := dial(t, p.Addr().String())
	data := randomBytes(200000, 24)
	start := time.Now()
	if got := roundTrip(t, c, data); !bytes.Equal(got, data) {
		t.Fatal("data changed")
	}
	if d := time.Since(start); d < 110*time.Millisecond {
		t.Fatalf("round trip %v, want at least 110ms", d)
	}
}

// TestBandwidthAndSlice checks the rate limit's lower bound and that
// slicing keeps the data exact.
func TestBandwidthAndSlice(t *testing.T) {
	srv := startServer(t, echo)
	p := startProxy(t, Config{Target: srv, Up: Faults{Slice: 7}, Down: Faults{Bandwidth: 100000}})
	c := dial(t, p.Addr().String())
	data := randomBytes(50000, 25)
	start := time.Now()
	if got := roundTrip(t, c, data); !bytes.Equal(got, data) {
		t.Fatal("data changed")
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Fatalf("50000 bytes at 100000 B/s took %v, want at least 400ms", d)
	}
}

// TestSetFaultsLive changes the faults of a live connection.
func TestSetFaultsLive(t *testing.T) {
	srv := startServer(t, echo)
	p := startProxy(t, Config{Target: srv})
	c := dial(t, p.Addr().String())
	msg := []byte("0123456789")
	if got := roundTrip(t, c, msg); !bytes.Equal(got, msg) {
		t.Fatal("clean phase changed data")
	}
	p.SetFaults(Faults{Corrupt: 1}, Faults{})
	if up, _ := p.Faults(); up.Corrupt != 1 {
		t.Fatalf("Faults() = %+v", up)
	}
	got := roundTrip(t, c, msg)
	for i := range msg {
		if got[i] == msg[i] {
			t.Fatalf("byte %d not corrupted: %q", i, got)
		}
	}
	p.SetFaults(Faults{}, Faults{})
	if got := roundTrip(t, c, msg); !bytes.Equal(got, msg) {
		t.Fatal("healed phase changed data")
	}
	if s := p.Stats(); s.Up.Corrupt != 10 {
		t.Fatalf("stats %+v", s)
	}
}

// TestDump checks the hex dump of live traffic.
func TestDump(t *testing.T) {
	srv := startServer(t, echo)
	var dump syncBuffer
	p := startProxy(t, Config{Target: srv, Dump: &dump})
	c := dial(t, p.Addr().String())
	roundTrip(t, c, []byte("hello"))
	c.Close()
	p.Close()
	out := dump.String()
	for _, want := range []string{
		"# conn 1 up client>server offset 0 length 5\n00000000  68 65 6c 6c 6f",
		"# conn 1 down server>client offset 0 length 5\n",
		"|hello|\n",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("dump lacks %q:\n%s", want, out)
		}
	}
}

// TestServeAndClose checks Serve's return value, Close with live
// connections and a target that refuses.
func TestServeAndClose(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	srv := startServer(t, echo)
	dialed := make(chan string, 4)
	p := New(Config{Target: srv, Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed <- addr
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- p.Serve(l) }()
	c := dial(t, l.Addr().String())
	roundTrip(t, c, []byte("x"))
	if got := recv(t, dialed); got != srv {
		t.Fatalf("dialed %q", got)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, served); err != nil {
		t.Fatalf("Serve returned %v after Close", err)
	}
	if _, err := io.Copy(io.Discard, c); err != nil && !isReset(err) {
		t.Fatalf("after Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Serve(l); err != nil {
		t.Fatal(err)
	}

	// A target that refuses: the client is reset, nothing leaks.
	p2 := startProxy(t, Config{Target: deadAddr})
	expectRefused(t, p2.Addr().String())
	if _, err := Start("127.0.0.1:0", Config{Up: Faults{Cut: 2}}); err == nil || !strings.HasPrefix(err.Error(), "mitm: ") {
		t.Fatalf("bad faults: %v", err)
	}
}

// TestFaultsMatchModel checks that what a real server receives through the
// proxy is exactly what the offline mangler computes for the same seed,
// connection number and direction.
func TestFaultsMatchModel(t *testing.T) {
	srv := startServer(t, echo)
	f := Faults{Corrupt: 0.002, Cut: 0.0005, Dup: 0.0005, Inject: 0.0005}
	p := startProxy(t, Config{Target: srv, Seed: 99, Up: f})
	in := randomBytes(1<<20, 26)
	want, reps := runMangler(f, streamKey(99, 1, dirUp), in, 1<<20)
	c := dial(t, p.Addr().String())
	go func() {
		c.Write(in)
		c.CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("received %d bytes, the model gives %d", len(got), len(want))
	}
	s := p.Stats()
	if n := s.Up.Corrupt + s.Up.Cut + s.Up.Dup + s.Up.Inject; n != int64(len(reps)) || s.Up.Out != int64(len(want)) {
		t.Fatalf("stats %+v, model has %d faults", s.Up, len(reps))
	}
}

// TestManyConnections runs concurrent connections with timing faults.
func TestManyConnections(t *testing.T) {
	srv := startServer(t, echo)
	p := startProxy(t, Config{Target: srv, Up: Faults{Slice: 1000}, Down: Faults{Latency: time.Millisecond, Jitter: time.Millisecond}})
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		c := dial(t, p.Addr().String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := randomBytes(100000, uint64(i))
			go func() {
				c.Write(data)
				c.CloseWrite()
			}()
			got, err := io.ReadAll(c)
			if err == nil && !bytes.Equal(got, data) {
				err = errors.New("data changed")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	if s := p.Stats(); s.Accepted != 20 || s.Active != 0 || s.Up.Out != 20*100000 || s.Down.Out != 20*100000 {
		t.Fatalf("stats %+v", s)
	}
}

// TestTimeline plays "cut at 64 KiB, refuse three reconnects, then heal"
// as the connection package's tests do, with DropAll and SetRefuse too.
func TestTimeline(t *testing.T) {
	srv := startServer(t, echo)
	p := startProxy(t, Config{Target: srv, Refuse: 3})
	p.SetFaults(Faults{DropAfter: 64 << 10}, Faults{})
	c := dial(t, p.Addr().String())
	go c.Write(make([]byte, 1<<20))
	expectReset(t, c)
	for range 3 {
		expectRefused(t, p.Addr().String())
	}
	// The fault is still on: the next connection is cut too.
	c = dial(t, p.Addr().String())
	go c.Write(make([]byte, 1<<20))
	expectReset(t, c)
	p.SetRefuseAfterDrop(0)
	p.Heal()
	c = dial(t, p.Addr().String())
	roundTrip(t, c, make([]byte, 1<<20))
	p.SetRefuse(2)
	p.DropAll()
	expectReset(t, c)
	expectRefused(t, p.Addr().String())
	expectRefused(t, p.Addr().String())
	c = dial(t, p.Addr().String())
	roundTrip(t, c, []byte("back"))
	s := p.Stats()
	if s.Dropped != 3 || s.Refused != 5 || s.Accepted != 9 || s.Up.Drop != 2 {
		t.Fatalf("stats %+v", s)
	}
}
