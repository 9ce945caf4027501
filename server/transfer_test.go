package server

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"

	"resh/cat"
	"resh/proto"
	"resh/tee"
)

// serveTransfers is a minimal client half: it serves read transfers from
// files and stores write transfers in written, until the session ends.
func serveTransfers(t *testing.T, c *client, files map[string]string) (written func(string) string, stop func()) {
	var mu sync.Mutex
	got := map[string]string{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			s, err := c.mux.AcceptStream()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { _ = s.Close() }()
				var open proto.TransferOpen
				if err := proto.Expect(s, proto.TypeTransferOpen, &open); err != nil {
					t.Errorf("transfer stream: %v", err)
					return
				}
				switch open.Op {
				case proto.OpRead:
					data, ok := files[open.Path]
					if !ok {
						_ = proto.WriteMessage(s, proto.TypeTransferReply, proto.TransferReply{Error: "no such file"})
						return
					}
					_ = proto.WriteMessage(s, proto.TypeTransferReply, proto.TransferReply{OK: true, Size: int64(len(data))})
					_, _ = io.WriteString(s, data)
				default:
					_ = proto.WriteMessage(s, proto.TypeTransferReply, proto.TransferReply{OK: true})
					b, _ := io.ReadAll(s)
					mu.Lock()
					got[open.Path] += string(b)
					mu.Unlock()
					_ = proto.WriteMessage(s, proto.TypeTransferResult, proto.TransferResult{OK: true, Bytes: int64(len(b))})
				}
			}()
		}
	}()
	return func(name string) string {
			mu.Lock()
			defer mu.Unlock()
			return got[name]
		}, func() {
			c.close()
			wg.Wait()
		}
}

// TestLcatLteeThroughBroker runs the real remote halves of lcat and ltee
// against a session's RESH_SOCKET, several transfers at once.
func TestLcatLteeThroughBroker(t *testing.T) {
	srv := startServer(t, nil)
	c := dial(t, srv, proto.Hello{Command: "echo $RESH_SOCKET; cat"}, nil)
	socket := socketPath(t, c)
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	written, stop := serveTransfers(t, c, map[string]string{"a": "A\n", "big": big})
	defer stop()

	ctx := t.Context()
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out, errb bytes.Buffer
			if code := cat.Remote(ctx, socket, []string{"a", "missing", "big"}, nil, &out, &errb); code != 1 {
				t.Errorf("lcat exit %d, want 1", code)
			}
			if out.String() != "A\n"+big {
				t.Errorf("lcat stdout: %d bytes, want %d", out.Len(), 2+len(big))
			}
			if errb.String() != "lcat: missing: no such file\n" {
				t.Errorf("lcat stderr %q", errb.String())
			}
		}()
	}
	var out, errb bytes.Buffer
	if code := tee.Remote(ctx, socket, []string{"x", "y"}, false, strings.NewReader(big), &out, &errb); code != 0 || errb.Len() > 0 {
		t.Errorf("ltee exit %d, stderr %q", code, errb.String())
	}
	wg.Wait()
	if out.String() != big || written("x") != big || written("y") != big {
		t.Errorf("ltee: stdout %d, x %d, y %d bytes, want %d", out.Len(), len(written("x")), len(written("y")), len(big))
	}
	_ = c.stdin.Close()
	readAll(t, c.stdout)
	c.exit()
}

func TestLargeOutputPrecedesExit(t *testing.T) {
	srv := startServer(t, nil)
	c := dial(t, srv, proto.Hello{Command: "head -c 8388608 /dev/zero; head -c 1000 /dev/zero >&2"}, nil)
	c.started()
	var errLen int
	done := make(chan struct{})
	go func() { defer close(done); b, _ := io.ReadAll(c.stderr); errLen = len(b) }()
	if n := len(readAll(t, c.stdout)); n != 8<<20 {
		t.Errorf("stdout %d bytes, want %d", n, 8<<20)
	}
	<-done
	if errLen != 1000 {
		t.Errorf("stderr %d bytes, want 1000", errLen)
	}
	if e := c.exit(); e.Code != 0 {
		t.Errorf("Exit %+v", e)
	}
}

func TestShutdownDuringSetup(t *testing.T) {
	srv, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	ctx := t.Context()
	conn, err := dialRaw(ctx, srv)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	// The client opens no streams; Shutdown must not wait the 30s
	// OpenTimeout for them.
	sctx, cancel := context.WithTimeout(ctx, testTimeout/2)
	defer cancel()
	waitFor(t, "the session to be accepted", func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return len(srv.sessions) == 1
	})
	if err := srv.Shutdown(sctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// A transfer the client has not answered stalls no other.
func TestStalledTransferBlocksNoOther(t *testing.T) {
	srv := startServer(t, nil)
	c := dial(t, srv, proto.Hello{Command: "echo $RESH_SOCKET; cat"}, nil)
	socket := socketPath(t, c)
	ctx := t.Context()

	slow, err := proto.DialSession(ctx, socket)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = slow.Close() }()
	if err := proto.WriteMessage(slow, proto.TypeTransferOpen, proto.TransferOpen{Op: proto.OpRead, Path: "slow"}); err != nil {
		t.Fatal(err)
	}
	slowStream, err := c.mux.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}

	_, stop := serveTransfers(t, c, map[string]string{"fast": "quick\n"})
	defer stop()
	var out, errb bytes.Buffer
	if code := cat.Remote(ctx, socket, []string{"fast"}, nil, &out, &errb); code != 0 || out.String() != "quick\n" {
		t.Errorf("lcat fast while slow waits: %d, %q, %q", code, out.String(), errb.String())
	}

	// Now answer the slow one.
	var open proto.TransferOpen
	if err := proto.Expect(slowStream, proto.TypeTransferOpen, &open); err != nil || open.Path != "slow" {
		t.Fatalf("slow stream: %+v, %v", open, err)
	}
	_ = proto.WriteMessage(slowStream, proto.TypeTransferReply, proto.TransferReply{OK: true, Size: 5})
	_, _ = io.WriteString(slowStream, "late\n")
	_ = slowStream.Close()
	var reply proto.TransferReply
	if err := proto.Expect(slow, proto.TypeTransferReply, &reply); err != nil || !reply.OK {
		t.Fatalf("slow reply %+v, %v", reply, err)
	}
	if b, err := io.ReadAll(slow); err != nil || string(b) != "late\n" {
		t.Errorf("slow data %q, %v", b, err)
	}
	_ = c.stdin.Close()
	readAll(t, c.stdout)
	c.exit()
}
