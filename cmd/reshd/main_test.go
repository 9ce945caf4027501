package main

import (
	"bufio"
	"context"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"resh/connection"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"-detach-timeout", "soon"}, {"-detach-timeout", "-1s"}, {"extra"}, {"-h"}} {
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
	ln, err := connection.Listen("tcp", "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var errb strings.Builder
	if code := run(context.Background(), []string{"-listen", ln.Addr().String()}, &errb); code != 1 || !strings.HasPrefix(errb.String(), "reshd: ") || strings.Count(errb.String(), "\n") != 1 {
		t.Errorf("busy port: exit %d, stderr %q; want 1 and one line", code, errb.String())
	}
}

func TestListensAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-detach-timeout", "1m"}, pw)
		_ = pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatal("no output")
	}
	first := sc.Text()
	if !regexp.MustCompile(`^reshd: listening on 127\.0\.0\.1:\d+$`).MatchString(first) {
		t.Fatalf("first line %q", first)
	}
	if !sc.Scan() || !strings.Contains(sc.Text(), "level=WARN") || !strings.Contains(sc.Text(), "no authentication") {
		t.Errorf("second line %q, want the no-authentication warning", sc.Text())
	}
	addr := strings.TrimPrefix(first, "reshd: listening on ")
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	c, err := connection.Dial(dctx, "tcp", addr, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	_ = c.Close()
	cancel()
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after the stop signal, want 0", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("reshd did not stop")
	}
}
