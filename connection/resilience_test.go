package connection

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// damagedPair opens a session whose client transports all carry faults f
// (seeded per transport), in both directions.
func damagedPair(t *testing.T, f faults) (*Client, *Accepted, *faultyDialer) {
	t.Helper()
	d := &faultyDialer{plan: func(n int) faults {
		g := f
		g.seed = f.seed + uint64(n)
		return g
	}}
	cfg := fastConfig()
	_, cl, acc := pairWith(t, cfg, withDialer(cfg, d))
	return cl, acc, d
}

func bothWays(t *testing.T, cl *Client, acc *Accepted, up, down []byte) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- transferErr(acc, cl, down, 60*time.Second) }()
	transfer(t, cl, acc, up, 60*time.Second)
	if err := <-errc; err != nil {
		t.Fatalf("server to client: %v", err)
	}
}

func TestCorruptionAndCutsBothDirections(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    faults
	}{
		{"replaced bytes", faults{corrupt: 1e-4, failWrites: -1, stallAfter: -1, seed: 1}},
		{"removed runs", faults{cut: 1e-4, failWrites: -1, stallAfter: -1, seed: 2}},
		{"both", faults{corrupt: 5e-5, cut: 5e-5, failWrites: -1, stallAfter: -1, seed: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, acc, _ := damagedPair(t, tc.f)
			bothWays(t, cl, acc, randomBytesN(1<<20, 10), randomBytesN(1<<20, 11))
			cs, as := cl.Stats(), acc.Stats()
			if cs.Damaged == 0 || as.Damaged == 0 {
				t.Fatalf("no damage detected (client %d, server %d): the fault did not hit", cs.Damaged, as.Damaged)
			}
			if cs.Retransmits == 0 || as.Retransmits == 0 {
				t.Fatalf("no retransmission (client %d, server %d)", cs.Retransmits, as.Retransmits)
			}
			t.Logf("client %+v", cs)
			t.Logf("server %+v", as)
		})
	}
}

// At one damaged byte in 10,000 a 64 KiB frame almost never gets through:
// the frame size must shrink for the transfer to progress.
func TestHeavyDamageShrinksFrames(t *testing.T) {
	cl, acc, _ := damagedPair(t, faults{corrupt: 5e-4, cut: 5e-4, failWrites: -1, stallAfter: -1, seed: 9})
	bothWays(t, cl, acc, randomBytesN(256<<10, 12), randomBytesN(256<<10, 13))
	if fs := cl.Stats().FrameSize; fs >= DefaultConfig().MaxFrameSize {
		t.Fatalf("client frame size %d did not shrink", fs)
	}
}

// A transport that fails on its N-th write, for every N in 0..19: handshake
// writes, data and acknowledgements. Every byte must still arrive once.
func TestTransportFailsAfterNWrites(t *testing.T) {
	for n := range 20 {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			d := &faultyDialer{plan: func(i int) faults {
				f := clean()
				if i == 0 {
					f.failWrites = n
				}
				return f
			}}
			cfg := fastConfig()
			cfg.MaxFrameSize = 4 << 10 // many writes per transfer
			_, cl, acc := pairWith(t, cfg, withDialer(cfg, d))
			bothWays(t, cl, acc, randomBytesN(200<<10, uint64(n)), randomBytesN(150<<10, uint64(n)+100))
			if d.dials() < 2 {
				t.Fatalf("transport never failed (%d dials)", d.dials())
			}
		})
	}
}

// Kill the TCP connection mid-transfer, from the client's side and from the
// server's, several times: nothing is lost or duplicated.
func TestResumeAfterKillEitherSide(t *testing.T) {
	for _, side := range []string{"client", "server"} {
		t.Run(side, func(t *testing.T) {
			cl, acc, d := damagedPair(t, clean())
			up, down := randomBytesN(8<<20, 20), randomBytesN(8<<20, 21)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 5; i++ {
					// Wait until some bytes moved since the last kill.
					target := cl.Stats().BytesReceived + 512<<10
					for cl.Stats().BytesReceived < target {
						select {
						case <-stop:
							return
						case <-time.After(time.Millisecond):
						}
					}
					if side == "client" {
						d.killCurrent()
					} else {
						acc.mu.Lock()
						if a := acc.att; a != nil {
							a.tr.Close()
						}
						acc.mu.Unlock()
					}
				}
			}()
			bothWays(t, cl, acc, up, down)
			close(stop)
			wg.Wait()
			if r := cl.Stats().Resumes; r == 0 {
				t.Fatalf("no resume happened")
			}
		})
	}
}

// A transport that silently stops delivering (a black hole) is detected by
// heartbeats and replaced.
func TestStalledTransportIsReplaced(t *testing.T) {
	d := &faultyDialer{plan: func(i int) faults {
		f := clean()
		if i == 0 {
			f.stallAfter = 100 << 10
		}
		return f
	}}
	cfg := fastConfig()
	_, cl, acc := pairWith(t, cfg, withDialer(cfg, d))
	bothWays(t, cl, acc, randomBytesN(1<<20, 30), randomBytesN(1<<20, 31))
	if d.dials() < 2 {
		t.Fatalf("stalled transport was never replaced")
	}
}

// refusingDialer lets the first transport through and refuses every later
// one: the client can never come back.
type refusingDialer struct {
	faultyDialer
}

func (d *refusingDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if d.dials() > 0 {
		return nil, errors.New("test: refused")
	}
	return d.faultyDialer.dial(ctx, network, addr)
}

func TestDetachedSessionExpires(t *testing.T) {
	scfg := fastConfig()
	scfg.DetachTimeout = 300 * time.Millisecond
	d := &refusingDialer{faultyDialer{plan: func(int) faults { return clean() }}}
	ccfg := fastConfig()
	ccfg.Dial = d.dial
	ccfg.ResumeTimeout = 500 * time.Millisecond
	srv, cl, acc := pairWith(t, scfg, ccfg)
	if _, err := cl.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(acc, buf); err != nil {
		t.Fatal(err)
	}
	d.killCurrent()
	_ = acc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := acc.Read(buf); !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("accepted read: %v, want ErrSessionExpired", err)
	}
	_ = cl.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := cl.Read(buf); !errors.Is(err, ErrResumeTimeout) {
		t.Fatalf("client read: %v, want ErrResumeTimeout", err)
	}
	// The server forgot the session.
	srv.mu.Lock()
	n := len(srv.sessions)
	srv.mu.Unlock()
	if n != 0 {
		t.Fatalf("server still holds %d sessions", n)
	}
}

// A resume of an expired session is refused as unknown, and the client
// stops redialling at once.
func TestResumeOfExpiredSessionRefused(t *testing.T) {
	scfg := fastConfig()
	scfg.DetachTimeout = 100 * time.Millisecond
	d := &faultyDialer{plan: func(i int) faults {
		f := clean()
		if i == 1 {
			f.failWrites = 0 // the first redial fails: wait for expiry
		}
		return f
	}}
	ccfg := fastConfig()
	ccfg.Dial = d.dial
	ccfg.RedialMin = 400 * time.Millisecond
	ccfg.RedialMax = 400 * time.Millisecond
	_, cl, acc := pairWith(t, scfg, ccfg)
	d.killCurrent()
	_ = acc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := acc.Read(make([]byte, 1)); !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("accepted read: %v", err)
	}
	_ = cl.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := cl.Read(make([]byte, 1)); !errors.Is(err, ErrUnknownSession) {
		t.Fatalf("client read: %v, want ErrUnknownSession", err)
	}
}

// Many clients at once through damaged transports, each in both directions.
func TestManyConcurrentClientsUnderDamage(t *testing.T) {
	cfg := fastConfig()
	srv, err := Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const clients = 12
	var wg sync.WaitGroup
	errs := make(chan error, 2*clients)
	// Server: echo every session back.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range clients {
			acc, err := srv.Accept()
			if err != nil {
				errs <- err
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := io.Copy(acc, acc); err != nil {
					errs <- fmt.Errorf("echo: %w", err)
				}
				if err := acc.Close(); err != nil {
					errs <- fmt.Errorf("server close: %w", err)
				}
			}()
		}
	}()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := &faultyDialer{plan: func(n int) faults {
				return faults{corrupt: 3e-5, cut: 3e-5, failWrites: -1, stallAfter: -1, seed: uint64(100*i + n)}
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cl, err := Dial(ctx, "tcp", srv.Addr().String(), withDialer(cfg, d))
			if err != nil {
				errs <- err
				return
			}
			data := randomBytesN(256<<10, uint64(i))
			if err := transferErr(cl, cl, data, 60*time.Second); err != nil {
				errs <- fmt.Errorf("client %d: %w", i, err)
			}
			if err := cl.Close(); err != nil {
				errs <- fmt.Errorf("client %d close: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
