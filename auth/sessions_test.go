package auth

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh/knownhosts"

	"resh/connection"
)

// served is what the server saw of one connection.
type served struct {
	resumed bool
	peer    string // PeerFingerprint
	err     error
}

// resumeServer serves connections with one MasterTLS configuration (so
// one set of ticket keys) until the test ends: each reads "ping" and
// answers "pong". It returns the address and what it saw, in order.
func (p *tlsPair) resumeServer(t *testing.T) (string, <-chan served) {
	t.Helper()
	scfg, err := MasterTLS(p.hostKey, filepath.Join(p.dir, AuthorizedKeysFile), filepath.Join(p.dir, ExecutorsFile), "test-executor/1", nil, p.limiter)
	require.NoError(t, err)
	ln, err := connection.Listen("tcp", "127.0.0.1:0", &connection.Config{SecureAbove: true})
	require.NoError(t, err)
	results := make(chan served, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			acc, err := ln.Accept()
			if err != nil {
				return
			}
			results <- serveOne(acc, scfg)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return ln.Addr().String(), results
}

func serveOne(acc *connection.Accepted, scfg *tls.Config) served {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tc, err := Server(ctx, acc, scfg)
	if err != nil {
		return served{err: err}
	}
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	s := served{resumed: tc.ConnectionState().DidResume, peer: tc.PeerFingerprint()}
	buf := make([]byte, 4)
	if _, s.err = io.ReadFull(tc, buf); s.err == nil {
		_, s.err = tc.Write([]byte("pong"))
	}
	return s
}

// resumeClient is a client as a new resh process makes it: its own
// configuration, sessions kept in p.dir/SessionsDir. Its VerifyConnection
// counts the handshakes it checked, resumed ones apart.
type resumeClient struct {
	cfg              *tls.Config
	key              ed25519.PrivateKey
	checked, resumed atomic.Int32
	certs            atomic.Int32 // certificates asked for
}

func (p *tlsPair) client(t *testing.T, key ed25519.PrivateKey, strict bool) *resumeClient {
	t.Helper()
	cfg, err := ClientTLS(key, filepath.Join(p.dir, KnownHostsFile), "127.0.0.1:4200", strict, io.Discard)
	require.NoError(t, err)
	cfg.ClientSessionCache = NewSessionCache(filepath.Join(p.dir, SessionsDir), key, "127.0.0.1:4200")
	c := &resumeClient{cfg: cfg, key: key}
	verify, getCert := cfg.VerifyConnection, cfg.GetClientCertificate
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		c.checked.Add(1)
		if cs.DidResume {
			c.resumed.Add(1)
		}
		return verify(cs)
	}
	cfg.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		c.certs.Add(1)
		return getCert(cri)
	}
	return c
}

// dial connects to addr, sends "ping" and reads "pong" (and so the
// session ticket the server sent before it).
func (c *resumeClient) dial(t *testing.T, addr string) (tls.ConnectionState, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := Dial(ctx, "tcp", addr, nil, c.cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	st := conn.ConnectionState()
	if _, err := conn.Write([]byte("ping")); err != nil {
		// A refusal may close the session before the write: its alert
		// waits to be read.
		if _, rerr := conn.Read(make([]byte, 1)); rerr != nil && Refusal(rerr, c.key) != nil {
			err = rerr
		}
		return st, err
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil {
		return st, err
	}
	if string(buf) != "pong" {
		return st, errors.New("reply " + string(buf))
	}
	return st, nil
}

func sessionFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, SessionsDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, filepath.Join(dir, SessionsDir, e.Name()))
	}
	return names
}

func TestTLSResumption(t *testing.T) {
	p := newPair(t, true)
	addr, results := p.resumeServer(t)
	fp := Fingerprint(PublicKey(p.clientKey))

	first := p.client(t, p.clientKey, false)
	st, err := first.dial(t, addr)
	require.NoError(t, err)
	assert.False(t, st.DidResume, "the first connection is a full handshake")
	s := <-results
	require.NoError(t, s.err)
	assert.False(t, s.resumed)
	assert.Equal(t, fp, s.peer)
	assert.EqualValues(t, 1, first.certs.Load(), "a full handshake asks for the certificate")

	files := sessionFiles(t, p.dir)
	require.Len(t, files, 1, "one session kept")
	assert.Equal(t, os.FileMode(0o600), mode(t, files[0]))
	assert.Equal(t, os.FileMode(0o700), mode(t, filepath.Join(p.dir, SessionsDir)))

	// Another process: its own configuration, the same RESH_HOME. The
	// server makes its configuration per client (GetConfigForClient): the
	// ticket still opens, so that configuration has the base's keys.
	second := p.client(t, p.clientKey, true)
	st, err = second.dial(t, addr)
	require.NoError(t, err)
	assert.True(t, st.DidResume, "the second process resumes")
	s = <-results
	require.NoError(t, s.err)
	assert.True(t, s.resumed, "the server resumed")
	assert.Equal(t, fp, s.peer, "the resumed session carries the client's key")
	assert.EqualValues(t, 1, second.resumed.Load(), "known_hosts checked on resumption")
	assert.Zero(t, second.certs.Load(), "no certificate made for a resumed session")
	require.Len(t, st.PeerCertificates, 1)
	key, err := peerKey([][]byte{st.PeerCertificates[0].Raw})
	require.NoError(t, err)
	assert.Equal(t, Fingerprint(PublicKey(p.hostKey)), Fingerprint(key))

	// And again: the ticket the resumed session brought replaced the file.
	st, err = second.dial(t, addr)
	require.NoError(t, err)
	assert.True(t, st.DidResume)
	require.NoError(t, (<-results).err)
	assert.Len(t, sessionFiles(t, p.dir), 1)
}

func TestTLSResumedKnownHostsChecked(t *testing.T) {
	p := newPair(t, true)
	addr, results := p.resumeServer(t)
	_, err := p.client(t, p.clientKey, false).dial(t, addr)
	require.NoError(t, err)
	require.NoError(t, (<-results).err)

	// known_hosts now pins another key for the host.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	line := knownhosts.Line([]string{knownhosts.Normalize("127.0.0.1:4200")}, PublicKey(other)) + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(p.dir, KnownHostsFile), []byte(line), 0o600))

	c := p.client(t, p.clientKey, false)
	_, err = c.dial(t, addr)
	var changed *HostKeyChangedError
	require.ErrorAs(t, err, &changed)
	assert.True(t, IsHostKeyError(err))
	assert.Equal(t, Fingerprint(PublicKey(p.hostKey)), changed.Offered)
	assert.Equal(t, Fingerprint(PublicKey(other)), changed.Known)
	assert.EqualValues(t, 1, c.resumed.Load(), "refused on the resumed handshake")
	assert.EqualValues(t, 1, c.checked.Load(), "no other attempt")
	assert.Error(t, (<-results).err, "server")

	assert.Empty(t, sessionFiles(t, p.dir), "a session refused is forgotten")

	// A host removed from known_hosts since is refused in strict mode.
	require.NoError(t, os.WriteFile(filepath.Join(p.dir, KnownHostsFile), nil, 0o600))
	_, err = p.client(t, p.clientKey, false).dial(t, addr)
	require.NoError(t, err, "recorded again")
	require.NoError(t, (<-results).err)
	require.NoError(t, os.WriteFile(filepath.Join(p.dir, KnownHostsFile), nil, 0o600))
	c = p.client(t, p.clientKey, true)
	_, err = c.dial(t, addr)
	var unknown *UnknownHostError
	require.ErrorAs(t, err, &unknown)
	assert.EqualValues(t, 1, c.resumed.Load(), "refused on the resumed handshake")
	assert.Error(t, (<-results).err, "server")
}

func TestTLSResumedAuthorizedKeysChecked(t *testing.T) {
	p := newPair(t, true)
	addr, results := p.resumeServer(t)
	_, err := p.client(t, p.clientKey, false).dial(t, addr)
	require.NoError(t, err)
	require.NoError(t, (<-results).err)

	// The key leaves authorized_keys.
	other, _, _ := LoadOrCreateIdentity(filepath.Join(p.dir, "other"))
	require.NoError(t, os.WriteFile(filepath.Join(p.dir, AuthorizedKeysFile), AuthorizedLine(PublicKey(other), ""), 0o600))

	c := p.client(t, p.clientKey, false)
	_, err = c.dial(t, addr)
	require.Error(t, err)
	var na *NotAuthorizedError
	require.ErrorAs(t, Refusal(err, p.clientKey), &na, "client error %v", err)
	assert.EqualValues(t, 1, c.resumed.Load(), "the client tried to resume")
	s := <-results
	var refused *RefusedKeyError
	require.ErrorAs(t, s.err, &refused, "the server refused the resumed session")
	assert.Equal(t, Fingerprint(PublicKey(p.clientKey)), refused.Fingerprint)
}

func TestTLSResumptionPerIdentity(t *testing.T) {
	p := newPair(t, true)
	second, _, err := LoadOrCreateIdentity(filepath.Join(p.dir, "second"))
	require.NoError(t, err)
	f, err := os.OpenFile(filepath.Join(p.dir, AuthorizedKeysFile), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, _ = f.Write(AuthorizedLine(PublicKey(second), "second"))
	require.NoError(t, f.Close())
	addr, results := p.resumeServer(t)

	_, err = p.client(t, p.clientKey, false).dial(t, addr)
	require.NoError(t, err)
	require.NoError(t, (<-results).err)

	c := p.client(t, second, false)
	st, err := c.dial(t, addr)
	require.NoError(t, err)
	assert.False(t, st.DidResume, "another identity makes its own session")
	assert.EqualValues(t, 1, c.certs.Load())
	s := <-results
	require.NoError(t, s.err)
	assert.False(t, s.resumed)
	assert.Equal(t, Fingerprint(PublicKey(second)), s.peer)
	assert.Len(t, sessionFiles(t, p.dir), 2, "one session per identity")
}

func TestTLSCorruptSessionFile(t *testing.T) {
	for _, content := range [][]byte{nil, []byte("garbage"), append(append([]byte(nil), sessionMagic...), 5, 1, 2)} {
		t.Run(fmt.Sprintf("%q", content), func(t *testing.T) {
			p := newPair(t, true)
			addr, results := p.resumeServer(t)
			_, err := p.client(t, p.clientKey, false).dial(t, addr)
			require.NoError(t, err)
			require.NoError(t, (<-results).err)
			files := sessionFiles(t, p.dir)
			require.Len(t, files, 1)
			require.NoError(t, os.WriteFile(files[0], content, 0o600))

			st, err := p.client(t, p.clientKey, false).dial(t, addr)
			require.NoError(t, err)
			assert.False(t, st.DidResume, "a full handshake")
			require.NoError(t, (<-results).err)
			data, err := os.ReadFile(files[0])
			require.NoError(t, err, "the file is replaced")
			_, err = decodeSession(data)
			assert.NoError(t, err, "with a good session")

			st, err = p.client(t, p.clientKey, false).dial(t, addr)
			require.NoError(t, err)
			assert.True(t, st.DidResume)
			require.NoError(t, (<-results).err)
		})
	}
}

func TestSessionCacheFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), SessionsDir)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	c := NewSessionCache(dir, key, "h:1")
	_, ok := c.Get("h")
	assert.False(t, ok, "no directory yet")

	// A file that cannot be read as a session is removed.
	require.NoError(t, os.MkdirAll(dir, 0o700))
	require.NoError(t, os.WriteFile(c.path("h"), []byte("x"), 0o600))
	_, ok = c.Get("h")
	assert.False(t, ok)
	assert.NoFileExists(t, c.path("h"))

	// Put(nil) removes.
	require.NoError(t, os.WriteFile(c.path("h"), []byte("x"), 0o600))
	c.Put("h", nil)
	assert.NoFileExists(t, c.path("h"))

	// Paths differ by key, server and identity.
	_, key2, _ := ed25519.GenerateKey(rand.Reader)
	paths := map[string]bool{
		c.path("h"): true, c.path("g"): true,
		NewSessionCache(dir, key, "h:2").path("h"):  true,
		NewSessionCache(dir, key2, "h:1").path("h"): true,
	}
	assert.Len(t, paths, 4)

	// The directory is bounded: the oldest files go.
	old := time.Now().Add(-time.Hour)
	for i := range maxSessionFiles + 10 {
		name := filepath.Join(dir, fmt.Sprintf("%032x", i))
		require.NoError(t, os.WriteFile(name, []byte("x"), 0o600))
		require.NoError(t, os.Chtimes(name, old, old.Add(time.Duration(i)*time.Second)))
	}
	c.bound()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, maxSessionFiles)
	assert.NoFileExists(t, filepath.Join(dir, fmt.Sprintf("%032x", 9)), "among the oldest")
	assert.FileExists(t, filepath.Join(dir, fmt.Sprintf("%032x", 10)))
}

func TestSessionFileRoundTrip(t *testing.T) {
	// A real session, from a handshake, survives encoding.
	p := newPair(t, true)
	addr, results := p.resumeServer(t)
	c := p.client(t, p.clientKey, false)
	_, err := c.dial(t, addr)
	require.NoError(t, err)
	require.NoError(t, (<-results).err)
	files := sessionFiles(t, p.dir)
	require.Len(t, files, 1)
	data, err := os.ReadFile(files[0])
	require.NoError(t, err)
	cs, err := decodeSession(data)
	require.NoError(t, err)
	again, err := encodeSession(cs)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, again))
	// Every truncation is refused.
	for n := range len(data) - 1 {
		if _, err := decodeSession(data[:n]); err == nil {
			t.Errorf("a session file cut at %d bytes parsed", n)
		}
	}
}

func TestIdentityCertificateMadeOnce(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	a, err := identityCertificate(key)
	require.NoError(t, err)
	b, err := identityCertificate(key)
	require.NoError(t, err)
	assert.Same(t, a, b)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	c, err := identityCertificate(other)
	require.NoError(t, err)
	assert.NotSame(t, a, c)
}
