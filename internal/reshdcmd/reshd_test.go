package reshdcmd

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"resh/auth"
	"resh/connection"
	"resh/server"
)

func TestMain(m *testing.M) {
	// Run starts this program as its guardian, as reshd starts itself.
	if len(os.Args) == 2 && os.Args[1] == GuardianArg {
		os.Exit(server.ServeGuard(os.Stdin, os.Stderr, KillGrace))
	}
	switch os.Getenv(detachTestChild) {
	case "fail":
		os.Exit(3)
	case "refuse", "listen", "dashboard":
		ready := detachedChild()
		switch os.Getenv(detachTestChild) {
		case "refuse":
			_, _ = fmt.Fprintln(ready, "reshd: address 127.0.0.1:1 already in use")
			os.Exit(1)
		case "dashboard":
			_, _ = fmt.Fprintln(ready, "reshd: dashboard on http://127.0.0.1:2/")
		}
		_, _ = fmt.Fprintln(ready, "reshd: listening on 127.0.0.1:1")
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// run is reshd with args until ctx is done; it returns the exit status and
// what it wrote on stdout and stderr.
func run(ctx context.Context, args []string, stderr io.Writer) (code int, stdout string) {
	var out strings.Builder
	code = Run(ctx, args, &out, stderr)
	return code, out.String()
}

func TestBadUsage(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"-detach-timeout", "soon"}, {"-detach-timeout", "-1s"}, {"extra"},
		{"-insecure", "-listen", ":4200"}, {"-insecure", "-listen", "10.1.2.3:4200"}, {"-insecure", "-listen", "example.com:4200"},
		{"-replace"}, {"-detach"}, {"-job-retries", "-1"}, {"-job-retention", "0s"}, {"-join", "m", "-store", "x.db"},
		{"-join", "m", "-http", "127.0.0.1:4280"}, {"-http", ""}} {
		var errb strings.Builder
		code, out := run(context.Background(), args, &errb)
		assert.Equal(t, 2, code, args)
		assert.Empty(t, out, args)
		lines := strings.Split(strings.TrimSuffix(errb.String(), "\n"), "\n")
		if assert.Len(t, lines, 2, args) {
			assert.True(t, strings.HasPrefix(lines[0], "reshd: "), lines[0])
			assert.Equal(t, "usage: "+Command.Synopsis, lines[1], args)
		}
	}
}

// -http's address: a port alone is every interface, a host alone takes
// the dashboard's port.
func TestHTTPAddress(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:8080": "127.0.0.1:8080",
		":4280":          ":4280",
		"4281":           ":4281",
		"localhost":      "localhost:4280",
		"::1":            "[::1]:4280",
		"[::1]":          "[::1]:4280",
		"0.0.0.0":        "0.0.0.0:4280",
	} {
		got, err := httpAddress(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := httpAddress("")
	assert.ErrorContains(t, err, "-http needs an address")
}

func TestHelpAndVersion(t *testing.T) {
	for _, h := range []string{"-h", "--help"} {
		var errb strings.Builder
		code, out := run(context.Background(), []string{h}, &errb)
		assert.Equal(t, 0, code, h)
		assert.Empty(t, errb.String(), h)
		assert.True(t, strings.HasPrefix(out, "usage: "+Command.Synopsis+"\n"), out)
		for _, flag := range []string{"-listen", "-detach-timeout", "-insecure", "-log", "-pidfile", "-replace", "-detach", "--version"} {
			assert.Regexp(t, "(?m)^  "+regexp.QuoteMeta(flag)+"\\b", out, flag)
		}
	}
	var errb strings.Builder
	code, out := run(context.Background(), []string{"--version"}, &errb)
	assert.Equal(t, 0, code)
	assert.Regexp(t, `^reshd \S+ \(commit [^)]+\)\n$`, out)
}

// A second reshd on a busy port exits 1 with one line naming the process
// that holds the port (here, this test).
func TestListenBusyPort(t *testing.T) {
	t.Setenv("RESH_HOME", t.TempDir())
	ln, err := connection.Listen("tcp", "127.0.0.1:0", nil)
	require.NoError(t, err)
	defer ln.Close()
	addr := ln.Addr().String()
	for _, args := range [][]string{{"-insecure"}, nil} {
		var errb strings.Builder
		code, _ := run(context.Background(), append(args, "-listen", addr), &errb)
		lines := strings.Split(strings.TrimSuffix(errb.String(), "\n"), "\n")
		last := lines[len(lines)-1]
		assert.Equal(t, 1, code, args)
		want := fmt.Sprintf("reshd: address %s already in use by %s (pid %d): stop it or choose another -listen address",
			addr, filepath.Base(os.Args[0]), os.Getpid())
		if _, err := os.Stat("/proc/net/tcp"); err != nil {
			want = fmt.Sprintf("reshd: address %s already in use: stop what listens there or choose another -listen address", addr)
		}
		assert.Equal(t, want, last, args)
		if args != nil {
			assert.Len(t, lines, 1, args)
		}
	}
}

// startReshd runs reshd with args until the test ends; it returns the
// lines it wrote up to "listening on" and after lines more, and the
// address.
func startReshd(t *testing.T, after int, args ...string) (lines []string, addr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, append([]string{"-listen", "127.0.0.1:0", "-detach-timeout", "1m"}, args...), io.Discard, pw)
		_ = pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			assert.Equal(t, 0, code, "exit status after the stop signal")
		case <-time.After(30 * time.Second):
			t.Fatal("reshd did not stop")
		}
	})
	sc := bufio.NewScanner(pr)
	listening := regexp.MustCompile(`^reshd: listening on (127\.0\.0\.1:\d+)$`)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if m := listening.FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
			break
		}
	}
	require.NotEmpty(t, addr, "reshd did not listen: %q", lines)
	for range after {
		sc.Scan()
		lines = append(lines, sc.Text())
	}
	// The rest is read, else reshd blocks writing it.
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	return lines, addr
}

// On first start reshd creates its host key, the local identity and an
// authorized_keys listing it: the same user's resh gets in over TLS.
func TestFirstStartCreatesKeys(t *testing.T) {
	home := t.TempDir()
	t.Setenv("RESH_HOME", home)
	lines, addr := startReshd(t, 0)
	all := strings.Join(lines, "\n")
	for _, want := range []string{"created host key", "created identity", "created authorized_keys", "fingerprint=SHA256:"} {
		assert.Contains(t, all, want)
	}
	for _, f := range []string{auth.HostKeyFile, auth.IdentityFile, auth.IdentityFile + ".pub", auth.AuthorizedKeysFile} {
		assert.FileExists(t, filepath.Join(home, f))
	}
	id, err := auth.LoadIdentity(filepath.Join(home, auth.IdentityFile))
	require.NoError(t, err)
	tcfg, err := auth.ClientTLS(id, filepath.Join(home, auth.KnownHostsFile), addr, false, io.Discard)
	require.NoError(t, err)
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	c, err := auth.Dial(dctx, "tcp", addr, nil, tcfg)
	require.NoError(t, err, "dial %s over TLS", addr)
	_ = c.Close()
	// Without TLS the server refuses at once, saying why.
	pc, err := connection.Dial(dctx, "tcp", addr, &connection.Config{DialAttempts: 1, HandshakeTimeout: 2 * time.Second})
	if pc != nil {
		_ = pc.Close()
	}
	require.ErrorIs(t, err, connection.ErrSecurityMismatch, "plain dial to a TLS reshd")
}

func TestInsecureListensAndStops(t *testing.T) {
	home := t.TempDir()
	t.Setenv("RESH_HOME", home)
	lines, addr := startReshd(t, 1, "-insecure")
	last := lines[len(lines)-1]
	assert.Contains(t, last, "level=WARN")
	assert.Contains(t, last, "no authentication")
	ents, _ := os.ReadDir(home)
	for _, e := range ents { // no keys: only the job store
		assert.True(t, strings.HasPrefix(e.Name(), "jobs.db"), "-insecure made %s in RESH_HOME", e.Name())
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	c, err := connection.Dial(dctx, "tcp", addr, nil)
	require.NoError(t, err, "dial %s", addr)
	_ = c.Close()
}

// -log sends the log to the file, -pidfile holds reshd's pid while it
// listens and is removed when it stops.
func TestLogAndPIDFile(t *testing.T) {
	t.Setenv("RESH_HOME", t.TempDir())
	dir := t.TempDir()
	logPath, pidPath := filepath.Join(dir, "reshd.log"), filepath.Join(dir, "reshd.pid")
	ctx, cancel := context.WithCancel(context.Background())
	var stderr lockedBuilder
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"-insecure", "-listen", "127.0.0.1:0", "-log", logPath, "-pidfile", pidPath}, io.Discard, &stderr)
	}()
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "no authentication")
	}, 10*time.Second, 10*time.Millisecond, "the log file gets the log")
	pid, err := readPIDFile(pidPath)
	require.NoError(t, err)
	assert.Equal(t, os.Getpid(), pid)
	assert.Regexp(t, `^reshd: listening on 127\.0\.0\.1:\d+\n$`, stderr.String(), "stderr says only where it listens")
	cancel()
	select {
	case code := <-done:
		assert.Equal(t, 0, code)
	case <-time.After(30 * time.Second):
		t.Fatal("reshd did not stop")
	}
	assert.NoFileExists(t, pidPath)
}

// -replace leaves alone a pid file naming a process that is not a reshd.
func TestReplaceLeavesOthersAlone(t *testing.T) {
	pidPath := filepath.Join(t.TempDir(), "reshd.pid")
	require.NoError(t, writePIDFile(pidPath))
	require.NoError(t, replace(pidPath, slog.New(slog.NewTextHandler(io.Discard, nil))))
	require.NoError(t, replace(filepath.Join(t.TempDir(), "none.pid"), slog.New(slog.NewTextHandler(io.Discard, nil))))
}

// lockedBuilder is a strings.Builder safe for concurrent use.
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// detachTestChild, in the environment of the child that detach starts,
// makes this test binary play that child: "fail" exits 3 saying nothing,
// "listen" says it listens and exits.
const detachTestChild = "RESHD_TEST_DETACHED_CHILD"

func TestDetachReportsTheChild(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "reshd.log")
	t.Setenv(detachTestChild, "fail")
	var stdout, stderr strings.Builder
	assert.Equal(t, 3, detach(Options{LogFile: logPath}, &stdout, &stderr), "the child's status")
	assert.Empty(t, stdout.String())
	assert.Equal(t, "reshd: the background reshd exited (status 3) without listening: see "+logPath+"\n", stderr.String())

	t.Setenv(detachTestChild, "refuse")
	stdout.Reset()
	stderr.Reset()
	assert.Equal(t, 1, detach(Options{LogFile: logPath}, &stdout, &stderr))
	assert.Equal(t, "reshd: address 127.0.0.1:1 already in use\n", stderr.String(), "the child's reason, as it said it")

	t.Setenv(detachTestChild, "listen")
	stdout.Reset()
	stderr.Reset()
	assert.Equal(t, 0, detach(Options{LogFile: logPath}, &stdout, &stderr))
	assert.Regexp(t, `^reshd: listening on 127\.0\.0\.1:1 \(pid \d+, log in `+regexp.QuoteMeta(logPath)+`\)\n$`, stdout.String())
	assert.Empty(t, stderr.String())

	// With -http, the dashboard's URL comes first.
	t.Setenv(detachTestChild, "dashboard")
	stdout.Reset()
	stderr.Reset()
	assert.Equal(t, 0, detach(Options{LogFile: logPath}, &stdout, &stderr))
	assert.Regexp(t, `^reshd: dashboard on http://127\.0\.0\.1:2/\nreshd: listening on 127\.0\.0\.1:1 \(pid \d+, log in `+regexp.QuoteMeta(logPath)+`\)\n$`, stdout.String())
	assert.Empty(t, stderr.String())
}
