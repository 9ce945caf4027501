package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"go.uber.org/goleak"

	"resh/auth"
	"resh/connection"
	"resh/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testTimeout = 20 * time.Second

// startServer serves on 127.0.0.1:0 until the test ends.
func startServer(t *testing.T, cfg *Config) *Server {
	t.Helper()
	if cfg == nil {
		cfg = &Config{}
	}
	if cfg.Logger == nil && testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv
}

// client is a hand-driven resh client.
type client struct {
	t                              *testing.T
	conn                           *connection.Client
	mux                            *yamux.Session
	control, stdin, stdout, stderr *yamux.Stream
}

// dial opens a session to srv, its four streams, and sends hello.
func dial(t *testing.T, srv *Server, hello proto.Hello, cfg *connection.Config) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, err := connection.Dial(ctx, "tcp", srv.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return start(t, conn, conn, hello)
}

// dialTLS is dial with TLS above the connection, configured by tcfg.
func dialTLS(t *testing.T, srv *Server, hello proto.Hello, cfg *connection.Config, tcfg *tls.Config) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	tc, err := auth.Dial(ctx, "tcp", srv.Addr().String(), cfg, tcfg)
	if err != nil {
		t.Fatal(err)
	}
	return start(t, tc, tc.NetConn().(*connection.Client), hello)
}

// start opens the four streams over rw (the connection, or TLS above it)
// and sends hello.
func start(t *testing.T, rw io.ReadWriteCloser, conn *connection.Client, hello proto.Hello) *client {
	t.Helper()
	mux, err := proto.Client(rw)
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, conn: conn, mux: mux}
	t.Cleanup(c.close)
	for _, k := range []struct {
		kind string
		s    **yamux.Stream
	}{{proto.KindControl, &c.control}, {proto.KindStdin, &c.stdin}, {proto.KindStdout, &c.stdout}, {proto.KindStderr, &c.stderr}} {
		s, err := mux.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		if err := proto.WriteMessage(s, proto.TypeOpen, proto.Open{Kind: k.kind}); err != nil {
			t.Fatal(err)
		}
		*k.s = s
	}
	if hello.Version == 0 {
		hello.Version = proto.Version
	}
	if err := proto.WriteMessage(c.control, proto.TypeHello, hello); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *client) close() {
	_ = c.mux.Close()
}

// started waits for Started.
func (c *client) started() proto.Started {
	c.t.Helper()
	var s proto.Started
	_ = c.control.SetReadDeadline(time.Now().Add(testTimeout))
	if err := proto.Expect(c.control, proto.TypeStarted, &s); err != nil {
		c.t.Fatalf("waiting for Started: %v", err)
	}
	return s
}

// exit waits for Exit.
func (c *client) exit() proto.Exit {
	c.t.Helper()
	var e proto.Exit
	_ = c.control.SetReadDeadline(time.Now().Add(testTimeout))
	if err := proto.Expect(c.control, proto.TypeExit, &e); err != nil {
		c.t.Fatalf("waiting for Exit: %v", err)
	}
	return e
}

func (c *client) send(t proto.Type, v any) {
	c.t.Helper()
	if err := proto.WriteMessage(c.control, t, v); err != nil {
		c.t.Fatal(err)
	}
}

// readAll reads a stream to its end, within the test timeout.
func readAll(t *testing.T, s *yamux.Stream) string {
	t.Helper()
	_ = s.SetReadDeadline(time.Now().Add(testTimeout))
	b, err := io.ReadAll(s)
	if err != nil {
		t.Fatalf("reading stream: %v (got %q)", err, b)
	}
	return string(b)
}

// until reads r into buf until buf holds want, within the test timeout.
func until(t *testing.T, s *yamux.Stream, buf *bytes.Buffer, want string) {
	t.Helper()
	_ = s.SetReadDeadline(time.Now().Add(testTimeout))
	p := make([]byte, 4096)
	for !strings.Contains(buf.String(), want) {
		n, err := s.Read(p)
		buf.Write(p[:n])
		if err != nil {
			t.Fatalf("waiting for %q: %v (got %q)", want, err, buf.String())
		}
	}
}

// faultyDial dials TCP and lets the test cut every transport and refuse
// new ones.
type faultyDial struct {
	mu    sync.Mutex
	conns []net.Conn
	dead  bool
}

func (f *faultyDial) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead {
		return nil, errors.New("test: network gone")
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err == nil {
		f.conns = append(f.conns, c)
	}
	return c, err
}

func (f *faultyDial) cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dead = true
	for _, c := range f.conns {
		_ = c.Close()
	}
}

func dialRaw(ctx context.Context, srv *Server) (*connection.Client, error) {
	return connection.Dial(ctx, "tcp", srv.Addr().String(), &connection.Config{DrainTimeout: time.Second})
}
