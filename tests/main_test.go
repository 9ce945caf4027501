// Package tests runs the built programs end to end: reshd serving, resh
// running commands through it (directly and through mitm), lcat and ltee
// reaching the client's files.
package tests

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"resh/auth"
)

// bin is the directory holding the programs built for this run.
var bin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "resh-tests-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	build := exec.Command("go", "build", "-o", dir, "../cmd/resh", "../cmd/reshd", "../cmd/lcat", "../cmd/ltee", "../cmd/mitm", "../cmd/reshjob")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "tests: build:", err)
		return 1
	}
	bin = dir
	// Every program shares one RESH_HOME, as on one machine where the user
	// who starts reshd uses resh: keys are made on first use.
	home, err := os.MkdirTemp("", "resh-tests-home-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(home)
	os.Setenv("RESH_HOME", home)
	// The identity exists before any test, whatever order -shuffle picks:
	// the resh that would create it says so on stderr, which tests of
	// resh's exact messages do not expect.
	// So does reshd's host key: tests that start a reshd with a RESH_HOME
	// of its own give it this one, as known_hosts is the run's too.
	for _, f := range []string{auth.IdentityFile, auth.HostKeyFile} {
		if _, _, err := auth.LoadOrCreateIdentity(filepath.Join(home, f)); err != nil {
			fmt.Fprintln(os.Stderr, "tests:", err)
			return 1
		}
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "tests: leaked goroutines:", err)
			return 1
		}
	}
	return code
}

// daemon is a reshd started for a test.
type daemon struct {
	addr     string
	cmd      *exec.Cmd
	home     string
	stop     func()
	insecure bool // started with -insecure: resh needs it too

	logMu  sync.Mutex
	log    []string      // reshd's log lines so far
	logged chan struct{} // closed and replaced at each new line
}

// waitLog waits until reshd logs a line containing every one of words.
func (d *daemon) waitLog(t testing.TB, within time.Duration, words ...string) string {
	t.Helper()
	deadline := time.After(within)
	for seen := 0; ; {
		d.logMu.Lock()
		lines, next := d.log[seen:], d.logged
		seen = len(d.log)
		d.logMu.Unlock()
		for _, l := range lines {
			if containsAll(l, words) {
				return l
			}
		}
		select {
		case <-next:
		case <-deadline:
			t.Fatalf("reshd did not log %q within %v", words, within)
			return ""
		}
	}
}

func containsAll(s string, words []string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// args returns resh's arguments to run command on d reached at addr.
func (d *daemon) args(addr string, command ...string) []string {
	if d.insecure {
		return append([]string{"-insecure", addr}, command...)
	}
	return append([]string{addr}, command...)
}

// firstContact runs resh once against addr so that it records the host key
// (and says so on stderr): the tests' own runs are then quiet.
func (d *daemon) firstContact(t testing.TB, addr string) {
	t.Helper()
	if d.insecure {
		return
	}
	// -executors runs nothing: it works as well on a master that has no
	// executor yet.
	first := exec.Command(filepath.Join(bin, "resh"), "-executors", addr)
	if out, err := first.CombinedOutput(); err != nil {
		t.Fatalf("first contact with reshd at %s: %v: %s", addr, err, out)
	}
}

var listenRE = regexp.MustCompile(`reshd: listening on (\S+)`)

// startReshd starts reshd on a free loopback port with extra flags, in a
// HOME of its own, and stops it when the test ends.
func startReshd(t testing.TB, flags ...string) *daemon {
	t.Helper()
	return startReshdAt(t, "127.0.0.1:0", nil, flags...)
}

// startReshdAt starts reshd listening on addr, with env added to its
// environment.
func startReshdAt(t testing.TB, addr string, env []string, flags ...string) *daemon {
	t.Helper()
	return startReshdVia(t, nil, addr, env, flags...)
}

// startReshdVia is startReshdAt with reshd run through the command wrap
// (for example ip netns exec NS), which must exec it.
func startReshdVia(t testing.TB, wrap []string, addr string, env []string, flags ...string) *daemon {
	t.Helper()
	home := t.TempDir()
	if insecureMode && !slices.Contains(flags, "-insecure") {
		flags = append(flags, "-insecure")
	}
	if !slices.Contains(flags, "-store") && !slices.Contains(flags, "-join") {
		// RESH_HOME is the whole run's: each reshd keeps its jobs apart.
		flags = append(flags, "-store", filepath.Join(home, "jobs.db"))
	}
	argv := append(append(slices.Clone(wrap), filepath.Join(bin, "reshd"), "-listen", addr), flags...)
	d, a := startLogged(t, argv, append([]string{"HOME=" + home}, env...), listenRE)
	d.home = home
	d.addr = a
	d.insecure = slices.Contains(flags, "-insecure")
	if addr == "127.0.0.1:0" {
		d.firstContact(t, d.addr)
	}
	return d
}

// startLogged starts argv with env added to the environment, keeps its
// stderr lines as its log, stops it (SIGINT, then SIGKILL after 10 s) when
// the test ends, and waits until a line matches ready: it returns the
// match's first group.
func startLogged(t testing.TB, argv, env []string, ready *regexp.Regexp) (*daemon, string) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	found := make(chan string, 1)
	d := &daemon{cmd: cmd, logged: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			d.logMu.Lock()
			d.log = append(d.log, sc.Text())
			close(d.logged)
			d.logged = make(chan struct{})
			d.logMu.Unlock()
			if m := ready.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		close(found)
	}()
	var once sync.Once
	d.stop = func() {
		once.Do(func() {
			_ = cmd.Process.Signal(os.Interrupt)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Errorf("%s did not stop on SIGINT", filepath.Base(argv[0]))
			}
		})
	}
	t.Cleanup(d.stop)
	select {
	case a, ok := <-found:
		if !ok {
			t.Fatalf("%s exited before it was ready (%v)", filepath.Base(argv[0]), ready)
		}
		return d, a
	case <-time.After(10 * time.Second):
		t.Fatalf("%s was not ready within 10s (%v)", filepath.Base(argv[0]), ready)
	}
	return nil, ""
}

// insecureMode runs the whole suite with -insecure on both sides
// (RESH_TEST_MODE=insecure; test.sh runs it both ways): the connection
// straight under the session protocol, no TLS.
var insecureMode = os.Getenv("RESH_TEST_MODE") == "insecure"

// tlsOnly marks a test of TLS itself (keys, host pinning, encryption,
// tampering), which has nothing to check in the -insecure pass.
func tlsOnly(t *testing.T) {
	t.Helper()
	if insecureMode {
		t.Skip("tests TLS: run by the default pass")
	}
}

// reshCommand is resh with args, with -insecure first in the -insecure
// pass.
func reshCommand(ctx context.Context, args ...string) *exec.Cmd {
	if insecureMode && !slices.Contains(args, "-insecure") {
		args = append([]string{"-insecure"}, args...)
	}
	return exec.CommandContext(ctx, filepath.Join(bin, "resh"), args...)
}

// stopReshd stops d now.
func stopReshd(t testing.TB, d *daemon) {
	t.Helper()
	d.stop()
}

// result is what a resh run gave.
type result struct {
	stdout, stderr string
	code           int
}

// resh runs resh with args, in directory dir (the client's working
// directory, "" for a temporary one), feeding stdin.
func resh(t *testing.T, dir, stdin string, args ...string) result {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := reshCommand(ctx, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("resh %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	if ctx.Err() != nil {
		t.Fatalf("resh %v: timed out; stderr: %s", args, errb.String())
	}
	return result{out.String(), errb.String(), code}
}

// local runs a shell command here, in dir, the way reshd runs it.
func local(t *testing.T, dir, stdin, command string) result {
	t.Helper()
	cmd := exec.Command("sh", "-c", command)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}
