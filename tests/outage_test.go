//go:build linux

package tests

import (
	"bufio"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"resh/internal/netnstest"
)

// longOutage is longer than reshd used to keep a finished session's output
// for a detached client (5 s after Exit, then a 30 s drain).
const longOutage = 40 * time.Second

// TestLongOutageLosesNothing cuts the network for 40 s while a command is
// still printing: the client that comes back gets every line and the exit
// status, as long as the outage is within the detach timeout.
func TestLongOutageLosesNothing(t *testing.T) {
	// reshd -insecure listens only on loopback; the connection below is the
	// same in both modes.
	tlsOnly(t)
	link := netnstest.NewLink(t)
	wrap := []string{"ip", "netns", "exec", link.NS}
	d := startReshdVia(t, wrap, link.NSIP+":0", nil)
	d.firstContact(t, d.addr)

	ctx, cancel := context.WithTimeout(context.Background(), longOutage+time.Minute)
	defer cancel()
	cmd := reshCommand(ctx, d.args(d.addr, "for i in 1 2 3 4 5; do echo $i; sleep 1; done; exit 7")...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 10)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var got []string
	for len(got) < 2 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("output ended after %q; stderr: %s", got, stderr.String())
			}
			got = append(got, l)
		case <-ctx.Done():
			t.Fatalf("no output; stderr: %s", stderr.String())
		}
	}
	link.Down()
	// The command finishes during the outage; reshd keeps its output.
	d.waitLog(t, 20*time.Second, "session ended", "code=7")
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatalf("resh's output ended with the link down; stderr: %s", stderr.String())
		}
		t.Fatalf("read %q with the link down", l)
	case <-time.After(longOutage): // the outage itself
	}
	link.Up()
	for l := range lines {
		got = append(got, l)
	}
	err = cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "1 2 3 4 5" || code != 7 {
		t.Fatalf("after a %v outage: output %q, exit %d, want 1..5 and 7; stderr: %s", longOutage, got, code, stderr.String())
	}
}
