package server

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"resh/proto"
)

// firstMessageTimeout bounds the wait for a tool's TransferOpen.
const firstMessageTimeout = 30 * time.Second

// broker is a session's RESH_SOCKET: each connection to it is a transfer,
// relayed byte for byte to a new stream towards the client (spec.md §3).
type broker struct {
	mux  *yamux.Session
	log  *slog.Logger
	dir  string
	path string
	ln   *net.UnixListener

	mu     sync.Mutex
	closed bool
	conns  map[*net.UnixConn]*yamux.Stream // each transfer, with its stream once opened
	wg     sync.WaitGroup
}

// newBroker creates the socket, mode 0600, in a new directory, mode 0700.
func newBroker(mux *yamux.Session, log *slog.Logger) (*broker, error) {
	// A Unix socket's path is limited to 107 bytes: fall back to /tmp
	// when $TMPDIR is too long.
	base := os.TempDir()
	if len(base) > 64 {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "resh-")
	if err != nil {
		return nil, fmt.Errorf("reshd: transfer socket: %w", err)
	}
	path := filepath.Join(dir, "s")
	fail := func(err error) (*broker, error) {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("reshd: transfer socket: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fail(err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return fail(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = ln.Close()
		return fail(err)
	}
	return &broker{mux: mux, log: log, dir: dir, path: path, ln: ln, conns: map[*net.UnixConn]*yamux.Stream{}}, nil
}

// serve accepts transfers until close.
func (b *broker) serve() {
	for {
		c, err := b.ln.AcceptUnix()
		if err != nil {
			return
		}
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			_ = c.Close()
			return
		}
		b.conns[c] = nil
		b.wg.Add(1)
		b.mu.Unlock()
		go func() {
			defer b.wg.Done()
			b.transfer(c)
			_ = c.Close()
			b.mu.Lock()
			delete(b.conns, c)
			b.mu.Unlock()
		}()
	}
}

// close stops accepting, cuts every transfer, waits for them, and removes
// the socket and its directory.
func (b *broker) close() {
	b.mu.Lock()
	b.closed = true
	_ = b.ln.Close()
	for c, st := range b.conns {
		_ = c.Close()
		if st != nil {
			_ = st.SetReadDeadline(time.Now()) // ends a Read waiting on the client
		}
	}
	b.mu.Unlock()
	b.wg.Wait()
	_ = os.RemoveAll(b.dir)
}

// transfer checks the tool's TransferOpen, opens a stream to the client
// with it, and relays both ways.
func (b *broker) transfer(c *net.UnixConn) {
	_ = c.SetReadDeadline(time.Now().Add(firstMessageTimeout))
	t, body, err := proto.ReadMessage(c)
	if err != nil {
		b.refuse(c, fmt.Sprintf("reshd: reading TransferOpen: %v", err))
		return
	}
	if t != proto.TypeTransferOpen {
		b.refuse(c, fmt.Sprintf("reshd: expected TransferOpen (type %d), got type %d", proto.TypeTransferOpen, t))
		return
	}
	var open proto.TransferOpen
	if err := proto.Decode(body, &open); err != nil {
		b.refuse(c, "reshd: "+err.Error())
		return
	}
	switch open.Op {
	case proto.OpRead, proto.OpWrite, proto.OpAppend:
	default:
		b.refuse(c, fmt.Sprintf("reshd: unknown transfer op %q", open.Op))
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	st, err := b.mux.OpenStream()
	if err != nil {
		b.refuse(c, fmt.Sprintf("reshd: cannot reach the client: %v", err))
		return
	}
	defer func() { _ = st.Close() }()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.conns[c] = st
	b.mu.Unlock()
	if err := proto.WriteMessage(st, proto.TypeTransferOpen, open); err != nil {
		b.refuse(c, fmt.Sprintf("reshd: cannot reach the client: %v", err))
		return
	}
	b.log.Debug("reshd: transfer", "op", open.Op, "path", open.Path, "tool", open.Tool)

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // tool → client
		defer wg.Done()
		_, _ = io.Copy(st, c)
		_ = st.Close()
	}()
	go func() { // client → tool
		defer wg.Done()
		if _, err := io.Copy(c, st); err != nil && !errors.Is(err, io.EOF) {
			// The tool went away: keep reading so the client is never stuck
			// on a full window.
			_, _ = io.Copy(io.Discard, st)
			return
		}
		_ = c.CloseWrite()
	}()
	wg.Wait()
}

func (b *broker) refuse(c *net.UnixConn, msg string) {
	b.log.Debug("reshd: transfer refused", "err", msg)
	_ = c.SetWriteDeadline(time.Now().Add(firstMessageTimeout))
	_ = proto.WriteMessage(c, proto.TypeError, proto.Error{Message: msg})
}
