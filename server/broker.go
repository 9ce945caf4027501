package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/yamux"

	"resh/proto"
)

// firstMessageTimeout bounds the wait for a tool's TransferOpen.
const firstMessageTimeout = 30 * time.Second

// broker is a session's RESH_SOCKET: each connection to it is a transfer.
// reshd either does the transfer itself with the descriptors the tool
// passed, or relays the tool's bytes to a new stream towards the client
// (spec.md §3).
type broker struct {
	mux  Mux
	log  *slog.Logger
	dir  string
	path string
	ln   *net.UnixListener

	mu     sync.Mutex
	closed bool
	jobs   map[*net.UnixConn]*job
	wg     sync.WaitGroup

	// Transfers done with passed descriptors, and relayed (for tests).
	passed, relayed atomic.Int64
}

// job is one connection to the socket, with the streams it opened.
type job struct {
	c      *net.UnixConn
	ctx    context.Context // done when the tool is gone or the broker closes
	cancel context.CancelFunc

	mu      sync.Mutex
	shut    bool // the broker closes: cut every stream
	streams []*yamux.Stream
}

// add registers a stream of the job; after stop it is cut at once.
func (j *job) add(st *yamux.Stream) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.streams = append(j.streams, st)
	if j.shut {
		_ = st.SetDeadline(time.Now())
	}
}

// stop cuts the job: its connection, its streams, its descriptors. The
// connection goes first: what the cut wakes can no longer tell the tool
// anything (a TransferDone "context canceled"), and the tool sees the end
// of the connection, the session's end (spec.md §3.3).
func (j *job) stop() {
	j.mu.Lock()
	j.shut = true
	streams := j.streams
	j.mu.Unlock()
	_ = j.c.Close()
	j.cancel()
	for _, st := range streams {
		_ = st.SetDeadline(time.Now()) // ends a Read waiting on the client
	}
}

// newBroker creates the socket, mode 0600, in a new directory, mode 0700.
func newBroker(mux Mux, log *slog.Logger) (*broker, error) {
	// A Unix socket's path is limited to 107 bytes: fall back to /tmp
	// when $TMPDIR is too long.
	base := os.TempDir()
	if len(base) > 64 {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, socketDirPattern())
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
	return &broker{mux: mux, log: log, dir: dir, path: path, ln: ln, jobs: map[*net.UnixConn]*job{}}, nil
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
		ctx, cancel := context.WithCancel(context.Background())
		j := &job{c: c, ctx: ctx, cancel: cancel}
		b.jobs[c] = j
		b.wg.Add(1)
		b.mu.Unlock()
		go func() {
			defer b.wg.Done()
			b.transfer(j)
			cancel()
			_ = c.Close()
			b.mu.Lock()
			delete(b.jobs, c)
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
	for _, j := range b.jobs {
		j.stop()
	}
	b.mu.Unlock()
	b.wg.Wait()
	_ = os.RemoveAll(b.dir)
}

// transfer reads the tool's first message: a TransferOpen to relay, or a
// TransferPass to do in the tool's place.
func (b *broker) transfer(j *job) {
	c := j.c
	_ = c.SetReadDeadline(time.Now().Add(firstMessageTimeout))
	t, body, fds, err := proto.ReadMessageFDs(c)
	if err != nil {
		closeFDs(fds)
		b.refuse(c, fmt.Sprintf("reshd: reading TransferOpen: %v", err))
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	switch t {
	case proto.TypeTransferOpen:
		closeFDs(fds)
		var open proto.TransferOpen
		if err := proto.Decode(body, &open); err != nil {
			b.refuse(c, "reshd: "+err.Error())
			return
		}
		if !knownOp(open.Op) {
			b.refuse(c, fmt.Sprintf("reshd: unknown transfer op %q", open.Op))
			return
		}
		b.relay(j, open)
	case proto.TypeTransferPass:
		var p proto.TransferPass
		if err := proto.Decode(body, &p); err != nil {
			closeFDs(fds)
			b.refuse(c, "reshd: "+err.Error())
			return
		}
		b.pass(j, p, fds)
	default:
		closeFDs(fds)
		b.refuse(c, fmt.Sprintf("reshd: expected TransferOpen (type %d), got type %d", proto.TypeTransferOpen, t))
	}
}

func knownOp(op string) bool {
	return op == proto.OpRead || op == proto.OpWrite || op == proto.OpAppend
}

// openStream opens a stream to the client and sends it open.
func (b *broker) openStream(j *job, open proto.TransferOpen) (*yamux.Stream, error) {
	st, err := b.mux.OpenStream()
	if err != nil {
		return nil, fmt.Errorf("reshd: cannot reach the client: %v", err)
	}
	j.add(st)
	if err := proto.WriteMessage(st, proto.TypeTransferOpen, open); err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("reshd: cannot reach the client: %v", err)
	}
	b.log.Debug("reshd: transfer", "op", open.Op, "path", open.Path, "tool", open.Tool)
	return st, nil
}

// relay opens a stream to the client with the tool's TransferOpen and
// relays byte for byte, both ways.
func (b *broker) relay(j *job, open proto.TransferOpen) {
	b.relayed.Add(1)
	c := j.c
	st, err := b.openStream(j, open)
	if err != nil {
		b.refuse(c, err.Error())
		return
	}
	defer func() { _ = st.Close() }()

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
			// The tool went away. Our end of the stream tells the client
			// to stop (spec.md §3.1); keep reading what is under way so
			// that it is never stuck on a full window.
			_ = st.Close()
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

func closeFDs(fds []int) {
	for _, fd := range fds {
		_ = syscall.Close(fd)
	}
}
