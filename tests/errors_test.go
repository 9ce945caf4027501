package tests

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh/knownhosts"

	"resh/auth"
)

// packagePrefix matches a Go package's name used as a message prefix
// ("auth: open …", "connection: dial …"): users should read what they did
// and what to do, not where in the code it failed.
var packagePrefix = regexp.MustCompile(`(^|[\s(:])(auth|access|connection|server|proto|tee|cat|client|yamux|ssh|tls|x509):`)

// runTool runs one of the built programs (not resh: reshCLI) with args and
// extra environment; its stderr and stdout come together.
func runTool(t *testing.T, env []string, program string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, program), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, ctx.Err(), "%s %q did not end: %s", program, args, out)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		require.NoError(t, err)
	}
	return result{stderr: string(out), code: cmd.ProcessState.ExitCode()}
}

// The common failures, each said in the user's terms: what failed, on
// which file or host, and what to do; never a package name.
func TestErrorsSpeakToTheUser(t *testing.T) {
	d := startReshd(t)
	// A port where nothing listens.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := l.Addr().String()
	l.Close()
	notADir := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(notADir, nil, 0o600))

	// A home whose known_hosts pins another key for d.
	changed := t.TempDir()
	other, _, err := auth.LoadOrCreateIdentity(filepath.Join(t.TempDir(), "other"))
	require.NoError(t, err)
	line := knownhosts.Line([]string{knownhosts.Normalize(d.addr)}, auth.PublicKey(other)) + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(changed, auth.KnownHostsFile), []byte(line), 0o600))

	for _, c := range []struct {
		name     string
		tlsOnly  bool // keys and hosts: nothing to check with -insecure
		env      []string
		program  string
		args     []string
		code     int
		contains []string // in stderr
	}{
		{name: "missing key file", tlsOnly: true, program: "resh", args: append([]string{"-i", "/nonexistent/id_ed25519"}, d.args(d.addr, "true")...), code: 255,
			contains: []string{"resh: cannot read your key /nonexistent/id_ed25519: no such file or directory"}},
		{name: "key directory is a file", tlsOnly: true, program: "resh", env: []string{"RESH_HOME=" + notADir}, args: d.args(d.addr, "true"), code: 255,
			contains: []string{"resh: cannot create resh's key directory " + notADir + ": not a directory"}},
		{name: "bad -allow", program: "resh", args: append([]string{"-allow", "/nope/x"}, d.args(d.addr, "true")...), code: 255,
			contains: []string{"resh: -allow /nope/x: no such directory /nope"}},
		{name: "unknown host", program: "resh", args: d.args("nosuchhost.invalid", "true"), code: 255,
			contains: []string{"nosuchhost.invalid"}},
		{name: "refused connection", program: "resh", args: d.args(refused, "true"), code: 255,
			contains: []string{"cannot connect to " + refused, "connection refused"}},
		{name: "changed host key", tlsOnly: true, program: "resh", env: []string{"RESH_HOME=" + changed}, args: d.args(d.addr, "true"), code: 255,
			contains: []string{"HOST KEY OF " + d.addr + " HAS CHANGED", "known_hosts"}},
		{name: "unauthorized key", tlsOnly: true, program: "resh", env: []string{"RESH_HOME=" + t.TempDir()}, args: d.args(d.addr, "true"), code: 255,
			contains: []string{"not authorized: the server does not accept key SHA256:"}},
		{name: "lcat outside the allowed directories", program: "resh", args: d.args(d.addr, "lcat /etc/passwd"), code: 1,
			contains: []string{"lcat: ", "/etc/passwd is outside the directories resh allows (add one with -allow)"}},
		{name: "lcat outside a session", program: "lcat", env: []string{"RESH_SOCKET="}, args: []string{"x"}, code: 1,
			contains: []string{"lcat: not inside a resh session"}},
		{name: "reshd key directory is a file", program: "reshd", env: []string{"RESH_HOME=" + notADir}, args: []string{"-listen", "127.0.0.1:0"}, code: 1,
			contains: []string{"reshd: cannot create resh's key directory " + notADir + ": not a directory"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.tlsOnly {
				tlsOnly(t)
			}
			var r result
			if c.program == "resh" {
				r = reshCLI(t, c.env, "", c.args...)
			} else {
				r = runTool(t, c.env, c.program, c.args...)
			}
			assert.Equal(t, c.code, r.code, "exit status; stderr: %s", r.stderr)
			for _, want := range c.contains {
				assert.Contains(t, r.stderr, want)
			}
			for _, l := range strings.Split(r.stderr, "\n") {
				assert.NotRegexp(t, packagePrefix, l, "a package name in a message")
			}
		})
	}
}
