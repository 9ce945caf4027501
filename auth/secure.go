package auth

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"resh/connection"
)

// ResumeKeyLabel is the TLS 1.3 exporter label (RFC 8446 §7.5) from which
// both ends derive the connection's resume key, with an empty context.
const ResumeKeyLabel = "EXPORTER-resh-connection-resume"

// ErrTampered reports TLS record authentication failing after the
// handshake. The connection below repairs every accidental damage and
// delivers exact bytes, so this means someone on the path altered, forged
// or removed data and fixed the frames' checksums: the session is ended,
// and nothing altered was delivered.
var ErrTampered = errors.New("the data was altered in transit (TLS authentication failed): someone is tampering with the connection")

// Keyed is a connection session that takes its resume key from the TLS
// session above it: *connection.Client and *connection.Accepted with
// connection.Config.SecureAbove set.
type Keyed interface {
	net.Conn
	SetResumeKey(key []byte) error
}

// Conn is TLS 1.3 running above a connection session. Its Read and Write
// report tampering as ErrTampered; Tampered tells whether it happened.
type Conn struct {
	*tls.Conn
	mu       sync.Mutex
	tampered error
}

// Client runs the TLS client handshake over conn with cfg (ClientTLS) and
// installs the resume key derived from the new TLS session in conn, so that
// from then on only this TLS session's holder can resume conn. A failed
// handshake closes conn.
func Client(ctx context.Context, conn Keyed, cfg *tls.Config) (*Conn, error) {
	return secure(ctx, conn, tls.Client(conn, cfg), false)
}

// Server runs the TLS server handshake over conn with cfg (ServerTLS) and
// installs the resume key, as Client does on the other end. A failed
// handshake (a client whose key is refused, among others) closes conn.
func Server(ctx context.Context, conn Keyed, cfg *tls.Config) (*Conn, error) {
	return secure(ctx, conn, tls.Server(conn, cfg), true)
}

func secure(ctx context.Context, conn Keyed, tc *tls.Conn, server bool) (*Conn, error) {
	if err := tc.HandshakeContext(ctx); err != nil {
		if server && tc.ConnectionState().DidResume {
			drainRefused(ctx, conn)
		}
		_ = conn.Close()
		if tamperedWith(err) {
			// The connection delivers exact bytes: a handshake record
			// that fails was altered on purpose.
			err = fmt.Errorf("%w (%v)", ErrTampered, err)
		}
		return nil, err
	}
	st := tc.ConnectionState()
	key, err := st.ExportKeyingMaterial(ResumeKeyLabel, nil, connection.ResumeKeySize)
	if err == nil {
		err = conn.SetResumeKey(key)
	}
	if err != nil {
		// The session ended as the handshake finished: a server that
		// refused our key closes at once, and its alert waits unread.
		_ = tc.SetReadDeadline(time.Now().Add(time.Second))
		if _, rerr := tc.Read(make([]byte, 1)); rerr != nil && !errors.Is(rerr, io.EOF) && !errors.Is(rerr, os.ErrDeadlineExceeded) {
			err = rerr
		}
		_ = conn.Close()
		return nil, fmt.Errorf("the secure session could not start: %w", err)
	}
	return &Conn{Conn: tc}, nil
}

// refusedDrain bounds how long a server waits for a client whose resumed
// session it refused to read the refusal and leave.
const refusedDrain = time.Second

// drainRefused reads conn until the client closes it, for refusedDrain at
// most, or until ctx ends. A server refuses a resumed session's key
// (VerifyConnection) before the client's Finished arrives: closing at
// once, with the client's last flight still coming, could end the
// client's session before it read the alert (seen in about one run in
// 30), and the client would not learn why.
func drainRefused(ctx context.Context, conn net.Conn) {
	_ = conn.SetReadDeadline(time.Now().Add(refusedDrain))
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()
	_, _ = io.Copy(io.Discard, conn)
}

// Dial opens a connection session to address with ccfg (SecureAbove is
// forced on) and runs TLS over it with tcfg. A transport lost during the
// TLS handshake, before the session could resume, is retried as a new
// session up to ccfg.DialAttempts times; refusals are not. A resumed TLS
// session (tcfg.ClientSessionCache) that the server ends during the
// handshake is retried once as a full handshake: the server refuses a key
// it no longer admits before reading the client's Finished, and its alert
// may be lost.
func Dial(ctx context.Context, network, address string, ccfg *connection.Config, tcfg *tls.Config) (*Conn, error) {
	var c connection.Config
	if ccfg != nil {
		c = *ccfg
	}
	c.SecureAbove = true
	attempts := max(c.DialAttempts, 1)
	if c.DialAttempts == 0 {
		attempts = connection.DefaultConfig().DialAttempts
	}
	var lastErr error
	retriedFull := false
	for i := 0; i < attempts; i++ {
		cl, err := connection.Dial(ctx, network, address, &c)
		if err != nil {
			return nil, err
		}
		cfg, resumed := watchResumption(tcfg)
		tc, err := Client(ctx, cl, cfg)
		if err == nil {
			return tc, nil
		}
		lastErr = err
		if resumed() && !retriedFull && !IsHostKeyError(err) && ctx.Err() == nil {
			// The server took the session offered, then ended the
			// handshake: most likely it refused the key (authorized_keys
			// is checked on resumption too), while our Finished was on
			// its way, so its alert was lost. crypto/tls forgot the
			// session: a full handshake gets the refusal said properly.
			retriedFull = true
			i--
			continue
		}
		if !errors.Is(err, connection.ErrNotKeyed) || ctx.Err() != nil {
			break
		}
	}
	if IsHostKeyError(lastErr) {
		return nil, &net.OpError{Op: "dial", Net: network, Err: lastErr}
	}
	return nil, lastErr
}

// watchResumption returns tcfg, or, if it keeps sessions, a copy whose
// VerifyConnection also notes a session resumed: resumed reports it.
func watchResumption(tcfg *tls.Config) (cfg *tls.Config, resumed func() bool) {
	if tcfg.ClientSessionCache == nil || tcfg.SessionTicketsDisabled {
		return tcfg, func() bool { return false }
	}
	var did atomic.Bool
	cfg = tcfg.Clone()
	verify := tcfg.VerifyConnection
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if verify != nil {
			if err := verify(cs); err != nil {
				return err
			}
		}
		did.Store(cs.DidResume)
		return nil
	}
	return cfg, did.Load
}

// Protocol is the application protocol the handshake negotiated (ALPN):
// cluster.LinkALPN for an executor's link to its master, else empty.
func (c *Conn) Protocol() string { return c.ConnectionState().NegotiatedProtocol }

// PeerFingerprint is the SHA256 fingerprint of the other end's key.
func (c *Conn) PeerFingerprint() string {
	st := c.ConnectionState()
	if len(st.PeerCertificates) == 0 {
		return ""
	}
	key, err := peerKey([][]byte{st.PeerCertificates[0].Raw})
	if err != nil {
		return ""
	}
	return Fingerprint(key)
}

// Read reads from the TLS session; tampering is reported as ErrTampered.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	return n, c.check(err)
}

// Write writes to the TLS session; tampering is reported as ErrTampered.
func (c *Conn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	return n, c.check(err)
}

// Abort ends the session at once without draining, when the connection
// below can (connection.Connection.Abort): for a user who leaves while the
// network is down. It closes the TLS session too.
func (c *Conn) Abort() {
	if a, ok := c.NetConn().(interface{ Abort() }); ok {
		a.Abort()
	}
	_ = c.Conn.Close()
}

// Tampered returns the ErrTampered error the session ended with, or nil.
func (c *Conn) Tampered() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tampered
}

func (c *Conn) check(err error) error {
	if err == nil || !tamperedWith(err) {
		return err
	}
	err = fmt.Errorf("%w (%v)", ErrTampered, err)
	c.mu.Lock()
	if c.tampered == nil {
		c.tampered = err
	}
	c.mu.Unlock()
	return err
}

// tamperedWith reports whether err, from a TLS session whose handshake is
// done, means altered records: a record that fails authentication or does
// not parse, found here ("local error") or by the peer ("remote error").
// The server refusing the client's key is not tampering: in TLS 1.3 that
// alert reaches the client after its handshake, on its first read.
func tamperedWith(err error) bool {
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) {
		return true
	}
	var op *net.OpError
	if !errors.As(err, &op) || (op.Op != "local error" && op.Op != "remote error") {
		return false
	}
	msg := op.Err.Error()
	switch {
	case msg == "tls: bad certificate", msg == "tls: certificate required", msg == "tls: user canceled", msg == "tls: no application protocol":
		return false
	}
	return strings.HasPrefix(msg, "tls: ")
}
