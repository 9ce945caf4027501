package server

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"resh/auth"
	"resh/connection"
	"resh/proto"
)

// tlsKeys makes a host key and a client identity in a temporary RESH_HOME
// whose authorized_keys lists the identity, and returns the server's TLS
// configuration, the identity and the directory.
func tlsKeys(t *testing.T) (*Config, ed25519.PrivateKey, string) {
	t.Helper()
	home := t.TempDir()
	host, _, err := auth.LoadOrCreateIdentity(filepath.Join(home, auth.HostKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := auth.LoadOrCreateIdentity(filepath.Join(home, auth.IdentityFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.EnsureAuthorizedKeys(filepath.Join(home, auth.AuthorizedKeysFile), auth.PublicKey(id), ""); err != nil {
		t.Fatal(err)
	}
	tcfg, err := auth.ServerTLS(host, filepath.Join(home, auth.AuthorizedKeysFile), nil, auth.NewLimiter())
	if err != nil {
		t.Fatal(err)
	}
	return &Config{TLS: tcfg}, id, home
}

// A session with TLS above the connection, whose transport is cut, resumes
// under the same TLS session and delivers exactly what the command wrote.
func TestTLSSessionSurvivesCut(t *testing.T) {
	cfg, id, home := tlsKeys(t)
	srv := startServer(t, cfg)
	ccfg, err := auth.ClientTLS(id, filepath.Join(home, auth.KnownHostsFile), srv.Addr().String(), false, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var f faultyDial
	c := dialTLS(t, srv, proto.Hello{Command: "read x; echo got $x; exit 4"}, &connection.Config{Dial: f.dial}, ccfg)
	c.started()
	f.mu.Lock()
	for _, tr := range f.conns {
		_ = tr.Close() // the connection resumes; TLS above it never notices
	}
	f.mu.Unlock()
	if _, err := io.WriteString(c.stdin, "over-tls\n"); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, c.stdout); got != "got over-tls\n" {
		t.Errorf("stdout %q", got)
	}
	if e := c.exit(); e.Code != 4 {
		t.Errorf("Exit %+v, want code 4", e)
	}
	if st := c.conn.Stats(); st.Resumes == 0 {
		t.Errorf("no resume: %+v", st)
	}
}

// A client without TLS gets nowhere with a TLS server.
func TestTLSServerRefusesPlainClient(t *testing.T) {
	cfg, _, _ := tlsKeys(t)
	srv := startServer(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := connection.Dial(ctx, "tcp", srv.Addr().String(), &connection.Config{DialAttempts: 1, HandshakeTimeout: 2 * time.Second})
	if err == nil {
		_ = c.Close()
		t.Fatal("a plain client opened a session on a TLS server")
	}
	if !errors.Is(err, connection.ErrSecurityMismatch) {
		t.Fatalf("plain client: %v, want a security mismatch", err)
	}
}
