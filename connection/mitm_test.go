package connection

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"resh/mitm"
)

// echoServer accepts sessions on srv and echoes each one until the client
// closes, then closes its end.
func echoServer(t *testing.T, srv *Server, sessions int) (wait func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range sessions {
			acc, err := srv.Accept()
			if err != nil {
				t.Errorf("accept: %v", err)
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := io.Copy(acc, acc); err != nil {
					t.Errorf("echo: %v", err)
				}
				if err := acc.Close(); err != nil {
					t.Errorf("server close: %v", err)
				}
			}()
		}
	}()
	return wg.Wait
}

// End to end over real TCP through the mitm proxy: many concurrent clients,
// each echoing data through a path that corrupts, cuts, duplicates, injects
// and resets, in one direction at a time.
func TestThroughMitm(t *testing.T) {
	hostile := mitm.Faults{Corrupt: 5e-5, Cut: 3e-5, Dup: 1e-5, Inject: 1e-5, DropAfter: 600 << 10}
	for _, dir := range []string{"up", "down", "both"} {
		t.Run(dir, func(t *testing.T) {
			cfg := fastConfig()
			srv, err := Listen("tcp", "127.0.0.1:0", cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			var up, down mitm.Faults
			if dir != "down" {
				up = hostile
			}
			if dir != "up" {
				down = hostile
			}
			proxy, err := mitm.Start("127.0.0.1:0", mitm.Config{Target: srv.Addr().String(), Up: up, Down: down, Refuse: 1, Seed: 42})
			if err != nil {
				t.Fatal(err)
			}
			defer proxy.Close()
			const clients = 8
			wait := echoServer(t, srv, clients)
			var wg sync.WaitGroup
			for i := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					cl, err := Dial(ctx, "tcp", proxy.Addr().String(), cfg)
					if err != nil {
						t.Errorf("client %d: %v", i, err)
						return
					}
					if err := transferErr(cl, cl, randomBytesN(1<<20, uint64(i)), 90*time.Second); err != nil {
						t.Errorf("client %d: %v", i, err)
					}
					if err := cl.Close(); err != nil {
						t.Errorf("client %d close: %v", i, err)
					}
				}()
			}
			wg.Wait()
			wait()
			st := proxy.Stats()
			t.Logf("proxy: %+v", st)
			var damage, drops int64
			for _, d := range []mitm.DirStats{st.Up, st.Down} {
				damage += d.Corrupt + d.Cut + d.Dup + d.Inject
				drops += d.Drop
			}
			if damage == 0 || drops == 0 {
				t.Fatalf("the proxy injected %d damages and %d drops: the test proved nothing", damage, drops)
			}
		})
	}
}

// A timeline: cut every connection at 1 MiB, refuse three reconnections,
// then heal. The transfer completes exactly.
func TestMitmOutageTimeline(t *testing.T) {
	cfg := fastConfig()
	srv, err := Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	proxy, err := mitm.Start("127.0.0.1:0", mitm.Config{Target: srv.Addr().String(), Up: mitm.Faults{DropAfter: 1 << 20}, Refuse: 3, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	var states []StateEvent
	var mu sync.Mutex
	ccfg := *cfg
	ccfg.OnState = func(e StateEvent) {
		mu.Lock()
		states = append(states, e)
		mu.Unlock()
		if e.Connected {
			proxy.SetFaults(mitm.Faults{}, mitm.Faults{}) // healed
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := Dial(ctx, "tcp", proxy.Addr().String(), &ccfg)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := srv.Accept()
	if err != nil {
		t.Fatal(err)
	}
	transfer(t, cl, acc, randomBytesN(3<<20, 50), 30*time.Second)
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	acc.Close()
	mu.Lock()
	defer mu.Unlock()
	failed := 0
	for _, e := range states {
		if !e.Connected && e.Err != nil && e.Attempt > 0 {
			failed++
		}
	}
	if st := proxy.Stats(); st.Refused < 3 || failed < 3 {
		t.Fatalf("refused %d, failed redials %d; want at least 3 each (states %v)", st.Refused, failed, fmt.Sprint(states))
	}
}

// The path resets every TCP connection before a window of full-size frames
// can pass, and damages bytes: frames must shrink on resume, or no byte
// would ever be acknowledged.
func TestDropsBeforeAWindowPasses(t *testing.T) {
	cfg := fastConfig()
	srv, err := Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	f := mitm.Faults{Corrupt: 1e-4, Cut: 1e-4, DropAfter: 150 << 10}
	proxy, err := mitm.Start("127.0.0.1:0", mitm.Config{Target: srv.Addr().String(), Up: f, Down: f, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := Dial(ctx, "tcp", proxy.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.abort()
	acc, err := srv.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer acc.abort()
	transfer(t, cl, acc, randomBytesN(512<<10, 60), 60*time.Second)
	if st := proxy.Stats(); st.Dropped == 0 {
		t.Fatal("no connection was dropped")
	}
}
