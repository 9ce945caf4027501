package tests

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// remoteDir asks reshd, reached at addr, where commands run.
func remoteDir(t *testing.T, d *daemon, addr string) string {
	t.Helper()
	r := resh(t, "", "", d.args(addr, "pwd")...)
	if r.code != 0 {
		t.Fatalf("pwd: %+v", r)
	}
	return strings.TrimSpace(r.stdout)
}

// The original course's commands give the same output through resh as run
// locally (ps and vmstat differ in their numbers: their headers and shape
// must match).
func TestCourseCommands(t *testing.T) {
	d := startReshd(t)
	dir := remoteDir(t, d, d.addr)
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("line one\nline two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, command := range []string{"ls", "ls -l", "cat notes.txt", "echo $((6*7))"} {
		t.Run(command, func(t *testing.T) {
			got := resh(t, "", "", d.addr, command)
			want := local(t, dir, "", command)
			if got != want {
				t.Fatalf("through resh %+v\nlocally %+v", got, want)
			}
		})
	}
	for _, command := range []string{"ps", "ps aux", "vmstat"} {
		t.Run(command, func(t *testing.T) {
			if _, err := exec.LookPath(strings.Fields(command)[0]); err != nil {
				t.Fatalf("%s is not installed here (.ci/run installs procps)", command)
			}
			got := resh(t, "", "", d.addr, command)
			want := local(t, dir, "", command)
			if got.code != want.code || got.code != 0 {
				t.Fatalf("status %d, locally %d; stderr %q", got.code, want.code, got.stderr)
			}
			gotHead, _, _ := strings.Cut(got.stdout, "\n")
			wantHead, _, _ := strings.Cut(want.stdout, "\n")
			if gotHead != wantHead {
				t.Fatalf("header %q, locally %q", gotHead, wantHead)
			}
			if command == "ps aux" && !strings.Contains(got.stdout, "ps aux") {
				t.Fatalf("ps aux does not list itself:\n%s", got.stdout)
			}
		})
	}
	t.Run("python3 -i", func(t *testing.T) {
		if _, err := exec.LookPath("python3"); err != nil {
			t.Fatal("python3 is not installed here (.ci/run installs it)")
		}
		in := "x = 6\nprint(x * 7)\nimport sys\nprint('to stderr', file=sys.stderr)\n"
		got := resh(t, "", in, d.addr, "python3", "-i")
		want := local(t, dir, in, "python3 -i")
		if got.stdout != want.stdout || got.code != want.code || !strings.Contains(got.stderr, "to stderr") {
			t.Fatalf("through resh %+v\nlocally %+v", got, want)
		}
	})
}

func TestExitStatusAndSignals(t *testing.T) {
	d := startReshd(t)
	for _, tc := range []struct {
		command string
		code    int
	}{
		{"true", 0},
		{"exit 3", 3},
		{"false", 1},
		{"kill -TERM $$", 128 + 15},
		{"kill -KILL $$", 128 + 9},
		{"no-such-command-here", 127},
	} {
		if r := resh(t, "", "", d.addr, tc.command); r.code != tc.code {
			t.Errorf("%q: status %d, want %d (stderr %q)", tc.command, r.code, tc.code, r.stderr)
		}
	}
}

// A signal sent to resh reaches the remote command.
func TestSignalForwarded(t *testing.T) {
	d := startReshd(t)
	cmd := reshCommand(context.Background(), d.addr, "echo started; sleep 30")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if _, err := stdout.Read(buf); err != nil { // the command runs
		t.Fatal(err)
	}
	start := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	err = cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 128+15 {
		t.Fatalf("resh after SIGTERM: %v, want exit 143", err)
	}
	if time.Since(start) > 20*time.Second {
		t.Fatal("the remote sleep was not interrupted")
	}
}

func TestStdinAndOutputs(t *testing.T) {
	d := startReshd(t)
	data := randomText(1<<20, 1)
	r := resh(t, "", data, d.addr, "sha256sum")
	want := fmt.Sprintf("%x  -\n", sha256.Sum256([]byte(data)))
	if r.stdout != want || r.code != 0 {
		t.Fatalf("sha256sum through resh: %+v, want %q", r, want)
	}
	r = resh(t, "", "", d.addr, "echo out; echo err >&2; echo out2")
	if r.stdout != "out\nout2\n" || r.stderr != "err\n" {
		t.Fatalf("stdout %q stderr %q: not kept apart", r.stdout, r.stderr)
	}
	// EOF on stdin reaches the remote command.
	r = resh(t, "", "a\nb\n", d.addr, "wc", "-l")
	if strings.TrimSpace(r.stdout) != "2" {
		t.Fatalf("wc -l: %q", r.stdout)
	}
}

func TestConcurrentClients(t *testing.T) {
	d := startReshd(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := randomText(256<<10, uint64(i))
			r := resh(t, "", data, d.addr, "sha256sum")
			want := fmt.Sprintf("%x  -\n", sha256.Sum256([]byte(data)))
			if r.stdout != want {
				t.Errorf("client %d: %q, want %q (stderr %q)", i, r.stdout, want, r.stderr)
			}
		}()
	}
	wg.Wait()
}

func TestReshOwnFailures(t *testing.T) {
	r := resh(t, "", "", "127.0.0.1:1", "true")
	if r.code != 255 || !strings.HasPrefix(r.stderr, "resh: ") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("connection refused: %+v, want status 255 and one line", r)
	}
	r = resh(t, "", "", "no-such-host.invalid", "true")
	if r.code != 255 || !strings.HasPrefix(r.stderr, "resh: ") {
		t.Fatalf("unknown host: %+v", r)
	}
}

// randomText returns about n bytes of printable lines, ending with a newline.
func randomText(n int, seed uint64) string {
	r := rand.New(rand.NewPCG(seed, 1))
	var b strings.Builder
	for b.Len() < n {
		fmt.Fprintf(&b, "%d,%x\n", r.IntN(1000000), r.Uint64())
	}
	return b.String()
}
