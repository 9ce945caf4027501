package client

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"resh/auth"
	"resh/connection"
)

// connConfig is the connection's configuration: Env's, with resh's drain
// and give-up times, its notices of outages and -v's events.
func (r *runner) connConfig(stderrTerm bool) *connection.Config {
	cfg := connection.Config{}
	if r.env.Connection != nil {
		cfg = *r.env.Connection
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = drainTimeout
	}
	if cfg.RefusedTimeout == 0 {
		cfg.RefusedTimeout = r.giveUp()
	}
	r.connected.Store(true)
	tell := stderrTerm && !r.o.Quiet
	refusalNotice := func(connection.StateEvent) {}
	if tell {
		refusalNotice = r.refusalNotice(r.o.Addr())
	}
	// Touched only by the connection's goroutine.
	noticed := false
	var lostAt time.Time
	userOnState := cfg.OnState
	cfg.OnState = func(ev connection.StateEvent) {
		r.connected.Store(ev.Connected)
		refusalNotice(ev)
		switch {
		case ev.Connected:
			r.debugf(1, "connection resumed after %v (%d redials)", since(lostAt), ev.Attempt)
		case ev.Attempt == 0:
			lostAt = time.Now()
			r.debugf(1, "connection lost: %v", ev.Err)
		default:
			r.debugf(2, "redial %d failed: %v", ev.Attempt, ev.Err)
		}
		if tell && !ev.Connected && !noticed {
			noticed = true
			r.stderr.printf("resh: connection lost, reconnecting…%s", r.eol())
		}
		if tell && ev.Connected && noticed {
			noticed = false
			r.stderr.printf("resh: reconnected%s", r.eol())
		}
		if userOnState != nil {
			userOnState(ev)
		}
	}
	base := cfg.Dial
	if base == nil {
		base = (&net.Dialer{}).DialContext
	}
	cfg.Dial = func(ctx context.Context, network, address string) (net.Conn, error) {
		t := time.Now()
		c, err := base(ctx, network, address)
		switch {
		case err != nil:
			r.debugf(2, "TCP connect to %s: %v", address, err)
		case r.accepted.CompareAndSwap(false, true):
			r.debugf(1, "TCP connected to %s in %v", c.RemoteAddr(), since(t))
		default:
			r.debugf(2, "TCP connected to %s in %v", c.RemoteAddr(), since(t))
		}
		return c, err
	}
	return &cfg
}

// connectTimeout is -o ConnectTimeout, else DialTimeout.
func (r *runner) connectTimeout() time.Duration {
	if r.o.ConnectTimeout > 0 {
		return r.o.ConnectTimeout
	}
	return DialTimeout
}

// dial connects to reshd: the connection, and TLS above it unless
// -insecure, within the connect timeout.
func (r *runner) dial(ctx context.Context, stderrTerm bool) (net.Conn, error) {
	cfg := r.connConfig(stderrTerm)
	addr := r.o.Addr()
	network := r.o.Network
	if network == "" {
		network = "tcp"
	}
	timeout := r.connectTimeout()
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	r.debugf(1, "connecting to %s (%s)", addr, network)
	if r.o.Insecure {
		cl, err := connection.Dial(dctx, network, addr, cfg)
		if err != nil {
			return nil, r.dialError(ctx, addr, timeout, err)
		}
		r.debugf(1, "connected to %s without TLS in %v", addr, since(start))
		return cl, nil
	}
	tcfg, key, err := r.secure(addr)
	if err != nil {
		return nil, err
	}
	r.identity = key
	tc, err := auth.Dial(dctx, network, addr, cfg, tcfg)
	if err != nil {
		return nil, r.dialError(ctx, addr, timeout, err)
	}
	handshake := "TLS handshake done"
	if tc.ConnectionState().DidResume {
		handshake = "TLS session resumed"
	}
	r.debugf(1, "connected to %s, %s, in %v", addr, handshake, since(start))
	return tc, nil
}

// since is the time since t, rounded for reading.
func since(t time.Time) time.Duration {
	if t.IsZero() {
		return 0
	}
	return time.Since(t).Round(100 * time.Microsecond)
}

// secure loads (or creates) resh's identity and returns the TLS
// configuration for the server at addr, with its sessions kept in
// RESH_HOME/tls-sessions for the next process to resume (resumeTLS).
func (r *runner) secure(addr string) (*tls.Config, ed25519.PrivateKey, error) {
	home, err := auth.HomeDir(lookupEnv(r.env.Environ, "RESH_HOME"))
	if err != nil {
		return nil, nil, err
	}
	var key ed25519.PrivateKey
	if r.o.Identity != "" {
		key, err = auth.LoadIdentity(r.o.Identity)
	} else {
		path := filepath.Join(home, auth.IdentityFile)
		var created bool
		key, created, err = auth.LoadOrCreateIdentity(path)
		if created && !r.o.Quiet {
			r.stderr.printf("resh: created identity %s, key %s\n", path, auth.Fingerprint(auth.PublicKey(key)))
		}
	}
	if err != nil {
		return nil, nil, err
	}
	var notices io.Writer = r.stderr
	if r.o.Quiet {
		notices = io.Discard
	}
	tcfg, err := auth.ClientTLS(key, filepath.Join(home, auth.KnownHostsFile), addr, r.o.KnownOnly, notices)
	if err != nil {
		return nil, nil, err
	}
	if resumeTLS(r.env.Environ) {
		tcfg.ClientSessionCache = auth.NewSessionCache(filepath.Join(home, auth.SessionsDir), key, addr)
	}
	return tcfg, key, nil
}

// resumeTLS reports whether TLS sessions are kept in RESH_HOME and
// resumed by the next connection: unless RESH_NO_TLS_RESUME is set (to
// anything but "" or "0").
func resumeTLS(environ []string) bool {
	v := lookupEnv(environ, "RESH_NO_TLS_RESUME")
	return v == "" || v == "0"
}

// lookupEnv returns the value of the variable name in environ.
func lookupEnv(environ []string, name string) string {
	v := ""
	for _, kv := range environ {
		if k, val, ok := strings.Cut(kv, "="); ok && k == name {
			v = val
		}
	}
	return v
}

// dialError says why connecting failed, without the layers' repetitions:
// first a refusal of either side's key.
func (r *runner) dialError(ctx context.Context, addr string, timeout time.Duration, err error) error {
	switch {
	case auth.IsHostKeyError(err):
		return auth.HostKeyError(err)
	case r.identity != nil && auth.Refusal(err, r.identity) != nil:
		return auth.Refusal(err, r.identity)
	case errors.Is(err, auth.ErrTampered):
		return tampered("cannot connect to "+addr, err)
	case errors.Is(err, connection.ErrSecurityMismatch) && r.o.Insecure:
		return fmt.Errorf("cannot connect to %s: the server requires TLS: run resh without -insecure", addr)
	case errors.Is(err, connection.ErrSecurityMismatch):
		return fmt.Errorf("cannot connect to %s: the server runs without TLS (reshd -insecure): use resh -insecure, on loopback only", addr)
	case ctx.Err() == nil && isTimeout(err) && r.accepted.Load():
		return fmt.Errorf("%s accepted the connection but never answered: is it a reshd?", addr)
	case ctx.Err() == nil && isTimeout(err):
		return fmt.Errorf("cannot connect to %s: no answer within %v (-o ConnectTimeout=SECONDS)", addr, timeout)
	}
	return dialError(addr, err)
}

// tamperError says that TLS found altered data, for a user: what
// happened and what it means, with TLS's own words last.
type tamperError struct {
	what string
	err  error // wraps auth.ErrTampered
}

func tampered(what string, err error) error { return &tamperError{what, err} }

func (e *tamperError) Error() string {
	detail := e.err.Error()
	if i := strings.LastIndex(detail, " ("); i >= 0 {
		detail = detail[i:]
	} else {
		detail = ""
	}
	return e.what + ": the data was altered in transit and failed TLS authentication: someone is tampering with the connection (nothing altered was delivered)" + detail
}

func (e *tamperError) Unwrap() error { return e.err }

// dialError says why connecting failed, without the layers' repetitions.
func dialError(addr string, err error) error {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.As(err, &dnsErr):
		return fmt.Errorf("cannot resolve %s: %s", dnsErr.Name, dnsErr.Err)
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return fmt.Errorf("cannot connect to %s: %w", addr, opErr.Err)
	}
	return fmt.Errorf("cannot connect to %s: %w", addr, err)
}

// isTimeout reports whether err is a deadline: the connect timeout's, or a
// handshake's.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}
