package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh/knownhosts"

	"resh/auth"
)

const (
	fullHandshake = "TLS handshake done"
	resumed       = "TLS session resumed"
)

// runResume runs resh -v "echo in" (TLS on) with RESH_HOME=home and env
// against addr, as a new process would: it returns the exit code and
// stderr, and checks stdout when the command ran.
func runResume(t *testing.T, home, addr string, o Options, env ...string) (int, string) {
	t.Helper()
	h, p, _ := net.SplitHostPort(addr)
	o.Host = h
	fmt.Sscan(p, &o.Port)
	o.Command = "echo in"
	o.Verbosity = 1
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), &o, Env{
		Stdin:   strings.NewReader(""),
		Stdout:  &stdout,
		Stderr:  &stderr,
		Environ: append([]string{"RESH_HOME=" + home, "LANG=C"}, env...),
		Dir:     t.TempDir(),
		Signals: make(chan os.Signal),
	})
	if code == 0 {
		assert.Equal(t, "in\n", stdout.String())
	}
	return code, stderr.String()
}

func sessionFiles(t *testing.T, home string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(home, auth.SessionsDir, "*"))
	require.NoError(t, err)
	return names
}

// A second resh process resumes the first's TLS session, kept in
// RESH_HOME; an ssh-keygen identity (-i) gets a session of its own.
func TestTLSResumeAcrossRuns(t *testing.T) {
	home := t.TempDir()
	addr := secureServer(t, home)
	code, stderr := runResume(t, home, addr, Options{})
	require.Zero(t, code, stderr)
	assert.Contains(t, stderr, fullHandshake)
	require.Len(t, sessionFiles(t, home), 1)

	for range 2 {
		code, stderr = runResume(t, home, addr, Options{})
		require.Zero(t, code, stderr)
		assert.Contains(t, stderr, resumed)
		assert.NotContains(t, stderr, fullHandshake)
	}

	pub, err := os.ReadFile("../auth/testdata/ed25519_sshkeygen.pub")
	require.NoError(t, err)
	f, err := os.OpenFile(filepath.Join(home, auth.AuthorizedKeysFile), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, _ = f.Write(pub)
	require.NoError(t, f.Close())
	other := Options{Identity: "../auth/testdata/ed25519_sshkeygen"}
	code, stderr = runResume(t, home, addr, other)
	require.Zero(t, code, stderr)
	assert.Contains(t, stderr, fullHandshake, "another identity does not resume the first's session")
	assert.Len(t, sessionFiles(t, home), 2)
	code, stderr = runResume(t, home, addr, other)
	require.Zero(t, code, stderr)
	assert.Contains(t, stderr, resumed)
}

// A resumed session is checked against known_hosts: a key line replaced
// since refuses the server as a full handshake does, and the session is
// forgotten.
func TestTLSResumeKnownHostsChanged(t *testing.T) {
	home := t.TempDir()
	addr := secureServer(t, home)
	code, stderr := runResume(t, home, addr, Options{})
	require.Zero(t, code, stderr)
	require.Len(t, sessionFiles(t, home), 1)

	_, old, _ := ed25519.GenerateKey(rand.Reader)
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, auth.PublicKey(old)) + "\n"
	kh := filepath.Join(home, auth.KnownHostsFile)
	require.NoError(t, os.WriteFile(kh, []byte(line), 0o600))
	code, stderr = runResume(t, home, addr, Options{})
	assert.Equal(t, ExitFailure, code)
	assert.Contains(t, stderr, "resh: WARNING: THE HOST KEY OF "+addr+" HAS CHANGED")
	assert.Contains(t, stderr, "remove line 1 of "+kh)
	assert.Empty(t, sessionFiles(t, home), "the session was offered, refused and forgotten")
}

// A resumed session is checked against authorized_keys: a key removed
// since is refused, with the usual message.
func TestTLSResumeAuthorizedKeysChanged(t *testing.T) {
	home := t.TempDir()
	addr := secureServer(t, home)
	code, stderr := runResume(t, home, addr, Options{})
	require.Zero(t, code, stderr)
	require.Len(t, sessionFiles(t, home), 1)

	require.NoError(t, os.WriteFile(filepath.Join(home, auth.AuthorizedKeysFile), nil, 0o600))
	code, stderr = runResume(t, home, addr, Options{})
	id, err := auth.LoadIdentity(filepath.Join(home, auth.IdentityFile))
	require.NoError(t, err)
	assert.Equal(t, ExitFailure, code)
	assert.True(t, strings.HasSuffix(stderr, "resh: not authorized: the server does not accept key "+auth.Fingerprint(auth.PublicKey(id))+"\n"), stderr)
}

// A session file that cannot be read is ignored (a full handshake) and
// replaced.
func TestTLSResumeCorruptFile(t *testing.T) {
	home := t.TempDir()
	addr := secureServer(t, home)
	code, stderr := runResume(t, home, addr, Options{})
	require.Zero(t, code, stderr)
	files := sessionFiles(t, home)
	require.Len(t, files, 1)
	require.NoError(t, os.WriteFile(files[0], []byte("not a session"), 0o600))

	code, stderr = runResume(t, home, addr, Options{})
	require.Zero(t, code, stderr)
	assert.Contains(t, stderr, fullHandshake)
	data, err := os.ReadFile(files[0])
	require.NoError(t, err)
	assert.NotEqual(t, "not a session", string(data), "replaced")
	code, stderr = runResume(t, home, addr, Options{})
	require.Zero(t, code, stderr)
	assert.Contains(t, stderr, resumed)
}

// RESH_NO_TLS_RESUME=1: every connection is a full handshake, and nothing
// is written.
func TestTLSResumeOff(t *testing.T) {
	home := t.TempDir()
	addr := secureServer(t, home)
	for range 2 {
		code, stderr := runResume(t, home, addr, Options{}, "RESH_NO_TLS_RESUME=1")
		require.Zero(t, code, stderr)
		assert.Contains(t, stderr, fullHandshake)
	}
	assert.NoDirExists(t, filepath.Join(home, auth.SessionsDir))
	assert.True(t, resumeTLS(nil))
	assert.True(t, resumeTLS([]string{"RESH_NO_TLS_RESUME=0"}))
	assert.False(t, resumeTLS([]string{"RESH_NO_TLS_RESUME=yes"}))
}
