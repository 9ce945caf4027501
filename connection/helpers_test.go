package connection

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// fastConfig keeps tests quick: short heartbeats and timeouts.
func fastConfig() *Config {
	return &Config{
		HeartbeatInterval: 50 * time.Millisecond,
		DeadTimeout:       400 * time.Millisecond,
		MinRTO:            20 * time.Millisecond,
		MaxRTO:            200 * time.Millisecond,
		RedialMin:         5 * time.Millisecond,
		RedialMax:         50 * time.Millisecond,
		HandshakeTimeout:  2 * time.Second,
		DrainTimeout:      10 * time.Second,
	}
}

// randomBytesN returns n reproducible pseudo-random bytes.
func randomBytesN(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// pair starts a server on loopback and dials it, with cfg on both sides and
// dial overriding the client's transport if set.
func pair(t *testing.T, cfg *Config) (*Server, *Client, *Accepted) {
	t.Helper()
	return pairWith(t, cfg, cfg)
}

// pairWith is pair with separate server and client configurations.
func pairWith(t *testing.T, scfg, cfg *Config) (*Server, *Client, *Accepted) {
	t.Helper()
	srv, err := Listen("tcp", "127.0.0.1:0", scfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := Dial(ctx, "tcp", srv.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.abort() })
	acc, err := srv.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return srv, cl, acc
}

// transfer writes data on w then closes it, and reads everything from r,
// checking that the bytes arrive exactly and in order.
func transfer(t *testing.T, w, r Peer, data []byte, deadline time.Duration) {
	t.Helper()
	if err := transferErr(w, r, data, deadline); err != nil {
		t.Fatal(err)
	}
}

// transferErr is transfer for goroutines other than the test's.
func transferErr(w, r Peer, data []byte, deadline time.Duration) error {
	errc := make(chan error, 1)
	go func() {
		_, err := w.Write(data)
		if err == nil {
			err = w.CloseWrite()
		}
		errc <- err
	}()
	_ = r.SetReadDeadline(time.Now().Add(deadline))
	got, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("read after %d of %d bytes: %w", len(got), len(data), err)
	}
	if werr := <-errc; werr != nil {
		return fmt.Errorf("write: %w", werr)
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("received %d bytes (sha256 %x), want %d (sha256 %x)", len(got), sha256.Sum256(got), len(data), sha256.Sum256(data))
	}
	return r.SetReadDeadline(time.Time{})
}

// abort ends a session at once, as a crash would; tests use it in cleanups.
func (c *Connection) abort() {
	c.finish(net.ErrClosed)
	c.wg.Wait()
}

// withDialer returns cfg with its transport dialled through d.
func withDialer(cfg *Config, d *faultyDialer) *Config {
	c := *cfg
	c.Dial = d.dial
	return &c
}
