package auth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// SessionALPN is the application protocol reshd names for client sessions.
// Clients offer none (proto/spec.md §1.1): it only makes a server that
// takes no executors refuse a peer that offers the executors' protocol.
const SessionALPN = "resh/1"

// ErrNoKey is returned for a peer that presented no ed25519 key.
var ErrNoKey = errors.New("the other end presented no ed25519 key")

// NotAuthorizedError is what a client learns when the server refused its
// key.
type NotAuthorizedError struct {
	Fingerprint string // of the client's key
}

func (e *NotAuthorizedError) Error() string {
	return "not authorized: the server does not accept key " + e.Fingerprint
}

// certificate makes a self-signed X.509 certificate for key: it only
// carries the key through TLS; nobody checks its names or dates.
func certificate(key ed25519.PrivateKey) (tls.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cannot make a TLS certificate for the key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "resh " + Fingerprint(PublicKey(key))},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(100 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cannot make a TLS certificate for the key: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// peerKey extracts the ed25519 key of the peer's first certificate.
func peerKey(rawCerts [][]byte) (ssh.PublicKey, error) {
	if len(rawCerts) == 0 {
		return nil, ErrNoKey
	}
	cert, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return nil, fmt.Errorf("the other end sent a bad TLS certificate: %w", err)
	}
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok {
		return nil, ErrNoKey
	}
	return ssh.NewPublicKey(pub)
}

// ServerTLS is reshd's TLS configuration: TLS 1.3 only, hostKey presented,
// and a client admitted only if its key is in the authorized_keys file at
// authorizedKeysPath, re-read on every connection. A refusal goes through
// limiter (may be nil): logged at Warn with the key's fingerprint and the
// client's address (the first of each key from each address; then counted
// in a summary line), and delayed when that address failed recently. No
// handshake is ever delayed before its key is known to be refused.
func ServerTLS(hostKey ed25519.PrivateKey, authorizedKeysPath string, logger *slog.Logger, limiter *Limiter) (*tls.Config, error) {
	return MasterTLS(hostKey, authorizedKeysPath, "", "", logger, limiter)
}

// MasterTLS is ServerTLS for a master that also admits executors: a peer
// that negotiates the application protocol executorALPN (ExecutorTLS) is
// an executor, admitted only if its key is in the file at executorsPath;
// any other is a client, admitted by authorized_keys. So a client key
// cannot join as an executor, nor an executor key open a session, unless
// it is listed in both files. With executorsPath empty it is ServerTLS: a
// peer offering executorALPN fails the handshake (no common protocol).
func MasterTLS(hostKey ed25519.PrivateKey, authorizedKeysPath, executorsPath, executorALPN string, logger *slog.Logger, limiter *Limiter) (*tls.Config, error) {
	cert, err := certificate(hostKey)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	limiter.setLogger(logger)
	base := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS13,
		ClientAuth:   tls.RequireAnyClientCert,
	}
	// A reshd that takes no executors still names a protocol of its own,
	// so that an executor that dials it by mistake is told at once
	// (no_application_protocol) rather than refused as an unknown client.
	base.NextProtos = []string{SessionALPN}
	if executorsPath != "" {
		base.NextProtos = append(base.NextProtos, executorALPN)
	}
	cfg := base.Clone()
	cfg.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
		addr := hi.Conn.RemoteAddr().String()
		host := addr
		if h, _, err := net.SplitHostPort(addr); err == nil {
			host = h
		}
		ctx := hi.Context()
		c := base.Clone()
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			key, err := peerKey(rawCertificates(cs))
			if err != nil {
				limiter.refuse(ctx, host, "no ed25519 key", "reshd: refused a client without an ed25519 key", "addr", addr, "err", err)
				return err
			}
			fp := Fingerprint(key)
			path, who, file := authorizedKeysPath, "client", AuthorizedKeysFile
			if executorsPath != "" && cs.NegotiatedProtocol == executorALPN {
				path, who, file = executorsPath, "executor", filepath.Base(executorsPath)
			}
			keys, bad, err := ReadAuthorizedKeys(path)
			for _, b := range bad {
				logger.Warn("reshd: bad line in "+file+", skipped", "err", b)
			}
			if err != nil && !(who == "executor" && errors.Is(err, fs.ErrNotExist)) {
				logger.Error("reshd: cannot read "+file+": refusing every "+who, "err", err)
			}
			for _, k := range keys {
				if bytes.Equal(k.Marshal(), key.Marshal()) {
					logger.Debug("reshd: "+who+" key accepted", "fingerprint", fp, "addr", addr)
					return nil
				}
			}
			limiter.refuse(ctx, host, fp, "reshd: refused "+article(who)+" whose key is not in "+file, "fingerprint", fp, "addr", addr)
			return &RefusedKeyError{Fingerprint: fp, File: file}
		}
		return c, nil
	}
	return cfg, nil
}

// RefusedKeyError is the server's handshake error for a peer whose key it
// does not admit; the refusal was logged already (through the Limiter).
type RefusedKeyError struct {
	Fingerprint string
	File        string // authorized_keys or executors
}

func (e *RefusedKeyError) Error() string {
	return fmt.Sprintf("key %s is not in %s", e.Fingerprint, e.File)
}

func article(who string) string {
	if who == "executor" {
		return "an executor"
	}
	return "a " + who
}

// ExecutorTLS is ClientTLS for an executor joining a master: it also
// offers the application protocol alpn, which tells the master to check
// its key against the master's executors file (MasterTLS).
func ExecutorTLS(identity ed25519.PrivateKey, knownHostsPath, hostport string, strict bool, out io.Writer, alpn string) (*tls.Config, error) {
	c, err := ClientTLS(identity, knownHostsPath, hostport, strict, out)
	if err != nil {
		return nil, err
	}
	c.NextProtos = []string{alpn}
	return c, nil
}

// ClientTLS is resh's TLS configuration for the server at hostport
// ("host:port"): TLS 1.3 only, identity presented as the client's key, and
// the server's key checked against the known_hosts file at knownHostsPath
// by CheckKnownHost (strict: refuse an unknown host; otherwise record it,
// with a line on out). The certificate chain itself is not verified: the
// pinned key is the trust.
//
// The client's certificate is made when a full handshake asks for it, once
// per identity per process. The server's key is checked in
// VerifyConnection, which runs on every handshake, resumed ones included
// (with the certificate the session was made with): set ClientSessionCache
// (NewSessionCache) and a resumed session is held to known_hosts as a
// full handshake is.
func ClientTLS(identity ed25519.PrivateKey, knownHostsPath, hostport string, strict bool, out io.Writer) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("bad HOST:PORT %q: %w", hostport, err)
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		ServerName:         host,
		InsecureSkipVerify: true, // the key is checked against known_hosts below
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return identityCertificate(identity)
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			key, err := peerKey(rawCertificates(cs))
			if err != nil {
				return err
			}
			return CheckKnownHost(knownHostsPath, hostport, key, strict, out)
		},
	}, nil
}

// identityCerts holds the certificates made for identities in this
// process, by private key: making one costs an ed25519 signature.
var identityCerts struct {
	sync.Mutex
	m map[string]*tls.Certificate
}

// identityCertificate is certificate(key), made once per process.
func identityCertificate(key ed25519.PrivateKey) (*tls.Certificate, error) {
	identityCerts.Lock()
	defer identityCerts.Unlock()
	if c, ok := identityCerts.m[string(key)]; ok {
		return c, nil
	}
	c, err := certificate(key)
	if err != nil {
		return nil, err
	}
	if identityCerts.m == nil {
		identityCerts.m = make(map[string]*tls.Certificate)
	}
	identityCerts.m[string(key)] = &c
	return &c, nil
}

// rawCertificates is the DER of the peer's certificates in cs.
func rawCertificates(cs tls.ConnectionState) [][]byte {
	raw := make([][]byte, 0, len(cs.PeerCertificates))
	for _, pc := range cs.PeerCertificates {
		raw = append(raw, pc.Raw)
	}
	return raw
}

// IsHostKeyError reports whether err refuses the server's key: unknown in
// strict mode, or changed.
func IsHostKeyError(err error) bool { return HostKeyError(err) != nil }

// HostKeyError returns the known_hosts refusal inside err (a
// *HostKeyChangedError or an *UnknownHostError), which says all and what
// to do, or nil.
func HostKeyError(err error) error {
	var changed *HostKeyChangedError
	var unknown *UnknownHostError
	switch {
	case errors.As(err, &changed):
		return changed
	case errors.As(err, &unknown):
		return unknown
	}
	return nil
}

// Refusal returns a *NotAuthorizedError naming identity's fingerprint if
// err is the server refusing the client's key (a TLS bad_certificate or
// certificate_required alert), else nil.
func Refusal(err error, identity ed25519.PrivateKey) error {
	var op *net.OpError
	for e := err; e != nil; {
		if !errors.As(e, &op) {
			return nil
		}
		if op.Op == "remote error" {
			msg := op.Err.Error()
			if msg == "tls: bad certificate" || msg == "tls: certificate required" {
				return &NotAuthorizedError{Fingerprint: Fingerprint(PublicKey(identity))}
			}
			return nil
		}
		e = op.Err
	}
	return nil
}
