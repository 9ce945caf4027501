package auth

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The token is made once, 0600, and read back the same.
func TestHTTPTokenMadeOnce(t *testing.T) {
	home := t.TempDir()
	a, err := HTTPToken(home)
	require.NoError(t, err)
	require.Len(t, a, 64)
	b, err := HTTPToken(home)
	require.NoError(t, err)
	require.Equal(t, a, b)
	fi, err := os.Stat(filepath.Join(home, HTTPTokenFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	require.NoError(t, os.WriteFile(filepath.Join(home, HTTPTokenFile), []byte("short\n"), 0o600))
	_, err = HTTPToken(home)
	require.ErrorContains(t, err, "holds no token")
}

// The certificate is kept while it covers the names, made anew when it
// does not; a TLS client that trusts it reaches the names it covers.
func TestHTTPCertificateKeptAndRenewed(t *testing.T) {
	home := t.TempDir()
	c1, fp1, err := HTTPCertificate(home, []string{"127.0.0.1", "localhost"})
	require.NoError(t, err)
	require.Len(t, fp1, 95) // 32 hex pairs and 31 colons
	_, fp2, err := HTTPCertificate(home, []string{"localhost"})
	require.NoError(t, err)
	require.Equal(t, fp1, fp2, "a certificate that covers the names is kept")
	c3, fp3, err := HTTPCertificate(home, []string{"127.0.0.1", "dash.example"})
	require.NoError(t, err)
	require.NotEqual(t, fp1, fp3, "a new name needs a new certificate")
	require.Equal(t, c1.PrivateKey, c3.PrivateKey, "the key stays")
	fi, err := os.Stat(filepath.Join(home, HTTPKeyFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	leaf, err := x509.ParseCertificate(c3.Certificate[0])
	require.NoError(t, err)
	require.NoError(t, leaf.VerifyHostname("dash.example"))
	require.NoError(t, leaf.VerifyHostname("127.0.0.1"))

	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{c3}})
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			_ = c.Close()
		}
	}()
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	require.NoError(t, err)
	require.NoError(t, conn.Close())
}

// A key file of another kind is refused with its path.
func TestHTTPKeyOfAnotherKind(t *testing.T) {
	home := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(home, HTTPKeyFile), []byte("garbage"), 0o600))
	_, _, err := HTTPCertificate(home, []string{"localhost"})
	require.ErrorContains(t, err, "not a PEM key")
}
