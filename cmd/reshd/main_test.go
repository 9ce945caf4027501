package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"resh/auth"
	"resh/connection"
	"resh/server"
)

func TestMain(m *testing.M) {
	// run starts this program as its guardian, as reshd starts itself.
	if len(os.Args) == 2 && os.Args[1] == guardianArg {
		os.Exit(server.ServeGuard(os.Stdin, os.Stderr, killGrace))
	}
	goleak.VerifyTestMain(m)
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"-detach-timeout", "soon"}, {"-detach-timeout", "-1s"}, {"extra"}, {"-h"},
		{"-insecure", "-listen", ":4200"}, {"-insecure", "-listen", "10.1.2.3:4200"}, {"-insecure", "-listen", "example.com:4200"}} {
		var errb strings.Builder
		if code := run(context.Background(), args, &errb); code != 2 {
			t.Errorf("reshd %q: exit %d, want 2", args, code)
		}
		lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
		if lines[len(lines)-1] != usage {
			t.Errorf("reshd %q: stderr %q, want a usage line", args, errb.String())
		}
	}
}

func TestListenBusyPort(t *testing.T) {
	t.Setenv("RESH_HOME", t.TempDir())
	ln, err := connection.Listen("tcp", "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var errb strings.Builder
	for _, args := range [][]string{{"-insecure"}, nil} {
		errb.Reset()
		code := run(context.Background(), append(args, "-listen", ln.Addr().String()), &errb)
		lines := strings.Split(strings.TrimSuffix(errb.String(), "\n"), "\n")
		last := lines[len(lines)-1]
		if code != 1 || !strings.HasPrefix(last, "reshd: ") || !strings.Contains(last, "address already in use") {
			t.Errorf("busy port %q: exit %d, stderr %q; want 1 and a last line saying why", args, code, errb.String())
		}
		if args != nil && len(lines) != 1 {
			t.Errorf("busy port %q: %d lines, want 1", args, len(lines))
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
		done <- run(ctx, append([]string{"-listen", "127.0.0.1:0", "-detach-timeout", "1m"}, args...), pw)
		_ = pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("exit %d after the stop signal, want 0", code)
			}
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
	if addr == "" {
		t.Fatalf("reshd did not listen: %q", lines)
	}
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
		if !strings.Contains(all, want) {
			t.Errorf("log %q lacks %q", all, want)
		}
	}
	for _, f := range []string{auth.HostKeyFile, auth.IdentityFile, auth.IdentityFile + ".pub", auth.AuthorizedKeysFile} {
		if _, err := os.Stat(filepath.Join(home, f)); err != nil {
			t.Errorf("%s not created: %v", f, err)
		}
	}
	id, err := auth.LoadIdentity(filepath.Join(home, auth.IdentityFile))
	if err != nil {
		t.Fatal(err)
	}
	tcfg, err := auth.ClientTLS(id, filepath.Join(home, auth.KnownHostsFile), addr, false, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	c, err := auth.Dial(dctx, "tcp", addr, nil, tcfg)
	if err != nil {
		t.Fatalf("dial %s over TLS: %v", addr, err)
	}
	_ = c.Close()
	// Without TLS the server refuses at once, saying why.
	if c, err := connection.Dial(dctx, "tcp", addr, &connection.Config{DialAttempts: 1, HandshakeTimeout: 2 * time.Second}); !errors.Is(err, connection.ErrSecurityMismatch) {
		if c != nil {
			_ = c.Close()
		}
		t.Fatalf("plain dial to a TLS reshd: %v, want a security mismatch", err)
	}
}

func TestInsecureListensAndStops(t *testing.T) {
	home := t.TempDir()
	t.Setenv("RESH_HOME", home)
	lines, addr := startReshd(t, 1, "-insecure")
	if last := lines[len(lines)-1]; !strings.Contains(last, "level=WARN") || !strings.Contains(last, "no authentication") {
		t.Errorf("line after listening %q, want the no-authentication warning", last)
	}
	if ents, _ := os.ReadDir(home); len(ents) != 0 {
		t.Errorf("-insecure made files in RESH_HOME: %v", ents)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	c, err := connection.Dial(dctx, "tcp", addr, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	_ = c.Close()
}
