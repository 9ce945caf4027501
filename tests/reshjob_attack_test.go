package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// jobReport is reshjob -json's object.
type jobReport struct {
	Verdict    string `json:"verdict"`
	Detail     string `json:"detail"`
	Status     int    `json:"status"`
	Signal     int    `json:"signal"`
	WallMS     int64  `json:"wall_ms"`
	CPUMS      int64  `json:"cpu_ms"`
	PeakMemory int64  `json:"peak_memory"`
	Stdout     int64  `json:"stdout"`
	Stderr     int64  `json:"stderr"`
	Executor   string `json:"executor"`
	Exit       int    `json:"exit"`
}

// jobResult is what one `reshjob HOST run -json ...` gave: its exit
// status, the program's stdout (-json's object taken off), its stderr,
// the object, and how long reshjob ran.
type jobResult struct {
	code           int
	stdout, stderr string
	report         jobReport
	took           time.Duration
}

// reshjobArgs returns reshjob's arguments reaching d, then args: with TLS
// -known-only (resh recorded d's key at first contact), else -insecure.
func reshjobArgs(t testing.TB, d *daemon, args ...string) []string {
	t.Helper()
	host, port, err := net.SplitHostPort(d.addr)
	require.NoError(t, err)
	all := []string{"-p", port}
	if d.insecure {
		all = append(all, "-insecure")
	} else {
		all = append(all, "-known-only")
	}
	return append(append(all, host), args...)
}

// submitJob runs `reshjob HOST run -json runArgs...` against d with stdin
// (nil: empty) and requires the JSON object at the end of its stdout.
func submitJob(t testing.TB, d *daemon, stdin io.Reader, runArgs ...string) jobResult {
	t.Helper()
	args := reshjobArgs(t, d, append([]string{"run", "-json"}, runArgs...)...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "reshjob"), args...)
	cmd.Stdin = stdin
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := jobResult{took: time.Since(start), stderr: errb.String()}
	require.NoError(t, ctx.Err(), "reshjob %q did not end", args)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	i := strings.LastIndex(out.String(), `{"verdict":`)
	require.GreaterOrEqual(t, i, 0, "reshjob %q: no JSON object; exit %d, stderr %q", args, r.code, r.stderr)
	r.stdout = out.String()[:i]
	require.NoError(t, json.Unmarshal([]byte(out.String()[i:]), &r.report), "%q", out.String()[i:])
	assert.Equal(t, r.code, r.report.Exit, "-json's exit is reshjob's status")
	return r
}

// verdictLine is the line reshjob ends stderr with for a verdict but OK.
func verdictLine(verdict, detail string) string {
	return "reshjob: " + verdict + " (" + detail + ")\n"
}

// writeProgram writes src as a file name in a directory of its own and
// returns its path.
func writeProgram(t testing.TB, name, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(src), 0o644))
	return path
}

var markerSeq atomic.Int64

// newMarker returns digits found in no other process's command line: the
// tests pass it to each program as an argument, or as a sleep's
// fraction of a second, to find the job's processes in /proc.
func newMarker() string {
	return fmt.Sprintf("%d%05d", os.Getpid(), markerSeq.Add(1))
}

// processesWith lists the processes (pid and command line) whose command
// line holds marker, this machine's processes in every namespace but
// reshjob, which has the program's arguments too.
func processesWith(marker string) []string {
	reshjob := filepath.Join(bin, "reshjob") + " "
	entries, _ := os.ReadDir("/proc")
	var found []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		line := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
		if strings.Contains(line, marker) && !strings.HasPrefix(line, reshjob) {
			found = append(found, e.Name()+": "+line)
		}
	}
	return found
}

// skipWithout skips t when one of tools is not installed here.
func skipWithout(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
}

// startJobReshd starts a reshd for submitted programs, skipping t where
// the machine cannot build the sandbox (as TestReshjobHello does).
func startJobReshd(t *testing.T, flags ...string) *daemon {
	t.Helper()
	skipWithout(t, "bwrap", "python3")
	d := startReshd(t, flags...)
	r := submitJob(t, d, nil, "-lang", "sh", writeProgram(t, "probe.sh", "exit 0\n"))
	if r.code == 125 {
		t.Skipf("the executor cannot build the sandbox here: %s", r.stderr)
	}
	require.Equal(t, 0, r.code, "stderr %q", r.stderr)
	return d
}

// contained checks what follows every attack: no process whose command
// line holds marker is left, and d takes the next job at once.
func contained(t *testing.T, d *daemon, marker string) {
	t.Helper()
	assert.Empty(t, processesWith(marker), "processes of the job left after its verdict")
	next := submitJob(t, d, strings.NewReader("next\n"), writeProgram(t, "next.py", "print(input())\n"))
	assert.Equal(t, 0, next.code, "the next job: stderr %q", next.stderr)
	assert.Equal(t, "next\n", next.stdout)
	assert.Less(t, next.took, 5*time.Second, "the next job did not run at once")
}

// alloc10GiB is a C program that allocates 10 GiB and touches every page.
const alloc10GiB = `#include <stdio.h>
#include <stdlib.h>
int main(void) {
	size_t n = (size_t)10 << 30;
	char *p = malloc(n);
	if (!p) {
		puts("malloc failed");
		return 1;
	}
	for (size_t i = 0; i < n; i += 4096)
		p[i] = 1;
	puts("allocated 10 GiB");
	return 0;
}
`

// forkAll is a C program that forks children (each waiting for a signal)
// until it cannot, and prints how many it made.
const forkAll = `#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>
int main(void) {
	int n = 0;
	while (n < 100000) {
		pid_t p = fork();
		if (p < 0)
			break;
		if (p == 0) {
			pause();
			_exit(0);
		}
		n++;
	}
	printf("%d\n", n);
	return 0;
}
`

// Each item of the attack corpus, submitted with reshjob to a
// real reshd (root here: memory and pids cgroups): contained with its
// verdict, or a plain failure the program reports on stdout; then no
// process of it is left and the next job runs at once.
func TestReshjobAttackCorpus(t *testing.T) {
	skipWithout(t, "gcc")
	d := startJobReshd(t)

	t.Run("fork bomb", func(t *testing.T) {
		m := newMarker()
		// Every process starts two more, for ever, while the main one
		// becomes a sleep. The main one forks once, before any other
		// process is there: a fork of its that the pids limit failed
		// would end it (exit 2) rather than the time limit (seen under
		// load when it started both halves of the first pipeline).
		src := "exec 2>/dev/null\nbomb() { bomb | bomb & }\nbomb &\nexec sleep \"1000.$1\"\n"
		r := submitJob(t, d, nil, "-time", "2s", writeProgram(t, "bomb.sh", src), m)
		assert.Equal(t, 124, r.code)
		assert.Equal(t, "TIME_LIMIT", r.report.Verdict)
		// -time sets the CPU time too, which the bomb's processes on
		// every core may use up first.
		assert.Regexp(t, `^reshjob: TIME_LIMIT \((wall|cpu) time 2s exceeded\)\n$`, r.stderr)
		contained(t, d, m)
	})

	t.Run("infinite loop", func(t *testing.T) {
		m := newMarker()
		src := "int main(void) {\n\tvolatile unsigned long i = 0;\n\tfor (;;)\n\t\ti++;\n}\n"
		r := submitJob(t, d, nil, "-cpu", "1s", "-time", "20s", writeProgram(t, "loop.c", src), m)
		assert.Equal(t, 124, r.code)
		assert.Equal(t, "TIME_LIMIT", r.report.Verdict)
		// The shell running the program may say "CPU time limit exceeded".
		assert.True(t, strings.HasSuffix(r.stderr, verdictLine("TIME_LIMIT", "cpu time 1s exceeded")), "%q", r.stderr)
		assert.GreaterOrEqual(t, r.report.CPUMS, int64(900))
		assert.Less(t, r.took, 10*time.Second, "the CPU limit, not the wall time, ended it")
		contained(t, d, m)
	})

	t.Run("sleep 1000", func(t *testing.T) {
		m := newMarker()
		r := submitJob(t, d, nil, "-time", "1s", writeProgram(t, "sleep.sh", "sleep \"1000.$1\"\n"), m)
		assert.Equal(t, 124, r.code)
		assert.Equal(t, "TIME_LIMIT", r.report.Verdict)
		assert.Equal(t, -1, r.report.Status)
		assert.Empty(t, r.stdout)
		assert.Equal(t, verdictLine("TIME_LIMIT", "wall time 1s exceeded"), r.stderr)
		assert.Less(t, r.took, 5*time.Second)
		contained(t, d, m)
	})

	t.Run("allocating 10 GiB", func(t *testing.T) {
		m := newMarker()
		r := submitJob(t, d, nil, "-mem", "64M", writeProgram(t, "alloc.c", alloc10GiB), m)
		assert.Equal(t, 123, r.code, "stdout %q", r.stdout)
		assert.Equal(t, "MEMORY_LIMIT", r.report.Verdict)
		assert.Equal(t, "memory limit 64 MiB exceeded", r.report.Detail)
		assert.True(t, strings.HasSuffix(r.stderr, verdictLine("MEMORY_LIMIT", "memory limit 64 MiB exceeded")), "%q", r.stderr)
		assert.NotContains(t, r.stdout, "allocated")
		assert.LessOrEqual(t, r.report.PeakMemory, int64(64<<20))
		contained(t, d, m)
	})

	t.Run("printing forever", func(t *testing.T) {
		m := newMarker()
		src := "import sys\nwhile True:\n    sys.stdout.write('x' * 1023 + '\\n')\n"
		r := submitJob(t, d, nil, "-output", "1M", writeProgram(t, "flood.py", src), m)
		assert.Equal(t, 122, r.code)
		assert.Equal(t, "OUTPUT_LIMIT", r.report.Verdict)
		assert.True(t, strings.HasSuffix(r.stderr, verdictLine("OUTPUT_LIMIT", "stdout beyond 1 MiB")), "%q", r.stderr)
		assert.Equal(t, 1<<20, len(r.stdout), "the first MiB, all of it")
		assert.True(t, r.stdout == strings.Repeat(strings.Repeat("x", 1023)+"\n", 1024), "the first MiB as written")
		assert.EqualValues(t, 1<<20, r.report.Stdout)
		contained(t, d, m)
	})

	t.Run("TCP connections", func(t *testing.T) {
		m := newMarker()
		// A listener of the test's own: nothing may reach it.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		accepted := make(chan struct{}, 1)
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
				select {
				case accepted <- struct{}{}:
				default:
				}
			}
		}()
		defer l.Close()
		src := `import socket, sys
for target in sys.argv[2:]:
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        print("connected", target)
    except OSError as e:
        print("failed", target)
`
		targets := []string{d.addr, "127.0.0.1:22", l.Addr().String(), "8.8.8.8:53"}
		r := submitJob(t, d, nil, append([]string{writeProgram(t, "net.py", src), m}, targets...)...)
		assert.Equal(t, 0, r.code, "stderr %q", r.stderr)
		var want strings.Builder
		for _, target := range targets {
			want.WriteString("failed " + target + "\n")
		}
		assert.Equal(t, want.String(), r.stdout)
		select {
		case <-accepted:
			t.Error("a job's connection reached a listener of this machine")
		default:
		}
		contained(t, d, m)
	})

	t.Run("reading secrets and another job's files", func(t *testing.T) {
		// Job A writes a file in its work directory and sleeps until it
		// is cancelled: meanwhile job B is given the file's path on this
		// machine.
		ma, mb := newMarker(), newMarker()
		a := exec.Command(filepath.Join(bin, "reshjob"), reshjobArgs(t, d, "run",
			writeProgram(t, "a.sh", "echo mine > \"secret.$1\"\necho ready\nexec sleep 1000\n"), ma)...)
		aOut, err := a.StdoutPipe()
		require.NoError(t, err)
		var aErr strings.Builder
		a.Stderr = &aErr
		require.NoError(t, a.Start())
		defer func() { _ = a.Process.Kill(); _ = a.Wait() }()
		ready := make(chan string, 1)
		go func() {
			line, _ := bufio.NewReader(aOut).ReadString('\n')
			ready <- line
			_, _ = io.Copy(io.Discard, aOut)
		}()
		select {
		case line := <-ready:
			require.Equal(t, "ready\n", line, "job A: stderr %q", aErr.String())
		case <-time.After(20 * time.Second):
			t.Fatal("job A did not start within 20s")
		}
		theirs, err := filepath.Glob(filepath.Join(os.TempDir(), "resh-job-*", "secret."+ma))
		require.NoError(t, err)
		require.Len(t, theirs, 1, "job A's file on this machine")

		home := os.Getenv("RESH_HOME")
		require.NoError(t, os.WriteFile(filepath.Join(d.home, "secret"), []byte("the executor's"), 0o644))
		paths := []string{
			"/etc/shadow",
			filepath.Join(home, "id_ed25519"),
			filepath.Join(d.home, "secret"),
			d.home,
			theirs[0],
			filepath.Dir(theirs[0]),
		}
		if _, err := os.Stat(filepath.Join(home, "host_ed25519")); err == nil || !d.insecure {
			paths = append(paths, filepath.Join(home, "host_ed25519"))
		}
		for _, p := range paths {
			_, err := os.Stat(p)
			require.NoError(t, err, "%s is there outside the sandbox", p)
		}
		src := `import glob, os, sys
for p in sys.argv[3:]:
    try:
        if os.path.isdir(p):
            os.listdir(p)
        else:
            open(p, "rb").read(1)
        print("read", p)
    except FileNotFoundError:
        print("absent", p)
    except OSError as e:
        print("cannot", p, e)
print("work directories", len(glob.glob("/tmp/resh-job-*")))
# Job A is sh main.sh MARKER: this job's own command line names the
# marker too, not after main.sh.
for pid in os.listdir("/proc"):
    try:
        if "main.sh\0" + sys.argv[2] in open("/proc/%s/cmdline" % pid).read():
            print("sees job A:", pid)
    except OSError:
        pass
`
		r := submitJob(t, d, nil, append([]string{writeProgram(t, "read.py", src), mb, ma}, paths...)...)
		assert.Equal(t, 0, r.code, "stderr %q", r.stderr)
		var want strings.Builder
		for _, p := range paths {
			want.WriteString("absent " + p + "\n")
		}
		want.WriteString("work directories 0\n")
		assert.Equal(t, want.String(), r.stdout)

		// ^C to reshjob cancels job A.
		require.NoError(t, a.Process.Signal(os.Interrupt))
		err = a.Wait()
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee, "job A: stderr %q", aErr.String())
		assert.Equal(t, 130, ee.ExitCode(), "job A: stderr %q", aErr.String())
		_, err = os.Stat(filepath.Dir(theirs[0]))
		assert.True(t, errors.Is(err, os.ErrNotExist), "job A's work directory is still there: %v", err)
		contained(t, d, ma)
		assert.Empty(t, processesWith(mb))
	})

	t.Run("writing outside the work directory", func(t *testing.T) {
		m := newMarker()
		open := t.TempDir()
		require.NoError(t, os.Chmod(open, 0o777))
		dirs := []string{"/", "/etc", "/usr", "/usr/bin", "/work/..", "/proc", open, os.Getenv("RESH_HOME"), d.home}
		src := `import sys
for d in sys.argv[2:]:
    p = d + "/" + sys.argv[1]
    try:
        with open(p, "w") as f:
            f.write("escaped")
        print("wrote", p)
    except OSError:
        print("cannot", p)
`
		r := submitJob(t, d, nil, append([]string{writeProgram(t, "write.py", src), m}, dirs...)...)
		assert.Equal(t, 0, r.code, "stderr %q", r.stderr)
		var want strings.Builder
		for _, dir := range dirs {
			want.WriteString("cannot " + dir + "/" + m + "\n")
		}
		assert.Equal(t, want.String(), r.stdout)
		for _, dir := range dirs {
			_, err := os.Stat(filepath.Join(dir, m))
			assert.True(t, errors.Is(err, os.ErrNotExist), "%s: %v", filepath.Join(dir, m), err)
		}
		contained(t, d, m)
	})

	t.Run("background process left behind", func(t *testing.T) {
		m := newMarker()
		r := submitJob(t, d, nil, writeProgram(t, "bg.sh", "sleep \"777.$1\" &\necho started\nexit 0\n"), m)
		assert.Equal(t, 0, r.code, "stderr %q", r.stderr)
		assert.Equal(t, "OK", r.report.Verdict)
		assert.Equal(t, "started\n", r.stdout)
		assert.Empty(t, r.stderr)
		contained(t, d, m)
	})

	t.Run("a file left for the next job", func(t *testing.T) {
		m := newMarker()
		left := `for f in "/tmp/left.$1" "/dev/shm/left.$1" "left.$1"; do echo left > "$f"; done
echo written`
		r := submitJob(t, d, nil, writeProgram(t, "leave.sh", left), m)
		require.Equal(t, 0, r.code, "stderr %q", r.stderr)
		require.Equal(t, "written\n", r.stdout)
		look := `for f in "/tmp/left.$1" "/dev/shm/left.$1" "left.$1"; do
	if [ -e "$f" ]; then echo "found $f"; else echo "absent $f"; fi
done`
		r = submitJob(t, d, nil, writeProgram(t, "look.sh", look), m)
		assert.Equal(t, 0, r.code, "stderr %q", r.stderr)
		assert.Equal(t, "absent /tmp/left."+m+"\nabsent /dev/shm/left."+m+"\nabsent left."+m+"\n", r.stdout)
		for _, p := range []string{"/tmp/left." + m, filepath.Join(os.TempDir(), "left."+m), "/dev/shm/left." + m} {
			_, err := os.Stat(p)
			assert.True(t, errors.Is(err, os.ErrNotExist), "%s on this machine: %v", p, err)
		}
		contained(t, d, m)
	})
}

// Hello world in each built-in language with stdin and arguments (one
// with a space), and a compile error in each compiled one: the
// compiler's messages on stderr, then COMPILE_ERROR, exit 121.
func TestReshjobLanguages(t *testing.T) {
	d := startJobReshd(t)
	hello := []struct{ file, tool, src string }{
		{"hello.c", "gcc", `#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
	char line[64];
	if (argc != 3 || !fgets(line, sizeof line, stdin))
		return 2;
	line[strcspn(line, "\n")] = 0;
	printf("hello %s, args %s|%s, from C\n", line, argv[1], argv[2]);
	fprintf(stderr, "to stderr\n");
	return 0;
}
`},
		{"hello.cpp", "g++", `#include <iostream>
#include <string>
int main(int argc, char **argv) {
	std::string name;
	if (argc != 3 || !std::getline(std::cin, name))
		return 2;
	std::cout << "hello " << name << ", args " << argv[1] << "|" << argv[2] << ", from C++\n";
	std::cerr << "to stderr\n";
}
`},
		{"Hello.java", "javac", `import java.util.Scanner;

// The public class need not be named after the file.
public class Greeter {
	public static void main(String[] args) {
		String name = new Scanner(System.in).nextLine();
		System.out.println("hello " + name + ", args " + args[0] + "|" + args[1] + ", from Java");
		System.err.println("to stderr");
	}
}
`},
		{"hello.py", "python3", `import sys
name = sys.stdin.readline().strip()
print("hello %s, args %s, from Python" % (name, "|".join(sys.argv[1:])))
print("to stderr", file=sys.stderr)
`},
		{"hello.sh", "sh", `read -r name
echo "hello $name, args $1|$2, from sh"
echo "to stderr" >&2
`},
	}
	lang := map[string]string{".c": "C", ".cpp": "C++", ".java": "Java", ".py": "Python", ".sh": "sh"}
	for _, h := range hello {
		t.Run(h.file, func(t *testing.T) {
			skipWithout(t, h.tool)
			r := submitJob(t, d, strings.NewReader("world\n"), writeProgram(t, h.file, h.src), "a", "-b c")
			assert.Equal(t, 0, r.code, "stderr %q", r.stderr)
			assert.Equal(t, "OK", r.report.Verdict)
			assert.Equal(t, "hello world, args a|-b c, from "+lang[filepath.Ext(h.file)]+"\n", r.stdout)
			assert.Equal(t, "to stderr\n", r.stderr)
		})
	}

	broken := []struct{ file, tool, src, message string }{
		{"broken.c", "gcc", "int main(void) { return undefined_name; }\n", "undefined_name"},
		{"broken.cpp", "g++", "int main() { std::string s = 1; }\n", "string"},
		{"Broken.java", "javac", "public class Broken { public static void main(String[] a) { int x = \"s\"; } }\n", "incompatible types"},
	}
	for _, b := range broken {
		t.Run(b.file, func(t *testing.T) {
			skipWithout(t, b.tool)
			r := submitJob(t, d, strings.NewReader("never read\n"), writeProgram(t, b.file, b.src))
			assert.Equal(t, 121, r.code)
			assert.Equal(t, "COMPILE_ERROR", r.report.Verdict)
			assert.Empty(t, r.stdout)
			msg, last := splitLastLine(r.stderr)
			assert.Contains(t, msg, "error")
			assert.Contains(t, msg, b.message, "the compiler's message")
			assert.Equal(t, verdictLine("COMPILE_ERROR", "the compiler exited with status 1"), last)
		})
	}
}

// splitLastLine returns s without its last line, and that line.
func splitLastLine(s string) (before, last string) {
	i := strings.LastIndex(strings.TrimSuffix(s, "\n"), "\n")
	return s[:i+1], s[i+1:]
}

// Every verdict, with its exit status and -json's object: OK 0,
// RUNTIME_ERROR the program's status or 128+N for signal N, COMPILE_ERROR
// 121, OUTPUT_LIMIT 122, MEMORY_LIMIT 123, TIME_LIMIT 124, SANDBOX_ERROR
// 125 (a reshd that cannot find bwrap), and 255 for reshjob's own
// failures (a language the executor lacks).
func TestReshjobVerdictExitStatus(t *testing.T) {
	d := startJobReshd(t)
	for _, c := range []struct {
		name, file, src string
		limits          []string
		verdict, detail string
		code, status    int
		signal          int
	}{
		{"ok", "ok.sh", "echo fine\n", nil, "OK", "", 0, 0, 0},
		{"exit status", "exit.sh", "exit 3\n", nil, "RUNTIME_ERROR", "exit status 3", 3, 3, 0},
		{"signal", "segv.sh", "kill -SEGV $$\n", nil, "RUNTIME_ERROR", "killed by SIGSEGV", 128 + 11, -1, 11},
		{"compile error", "bad.c", "int main(void) { return x; }\n", nil, "COMPILE_ERROR", "the compiler exited with status 1", 121, -1, 0},
		// Lines of 16 bytes: 64 KiB of them end with a whole line.
		{"output limit", "loud.sh", "while :; do echo 0123456789abcde >&2; done\n", []string{"-output", "64K"}, "OUTPUT_LIMIT", "stderr beyond 64 KiB", 122, -1, -1},
		{"memory limit", "big.py", "b = bytearray(1 << 30)\n", []string{"-mem", "32M"}, "MEMORY_LIMIT", "memory limit 32 MiB exceeded", 123, -1, -1},
		{"time limit", "slow.sh", "sleep 9\n", []string{"-time", "500ms"}, "TIME_LIMIT", "wall time 500ms exceeded", 124, -1, -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.file == "bad.c" {
				skipWithout(t, "gcc")
			}
			r := submitJob(t, d, nil, append(c.limits, writeProgram(t, c.file, c.src))...)
			assert.Equal(t, c.code, r.code, "stderr %q", r.stderr)
			assert.Equal(t, c.verdict, r.report.Verdict)
			assert.Equal(t, c.detail, r.report.Detail)
			assert.Equal(t, c.status, r.report.Status)
			if c.signal >= 0 {
				assert.Equal(t, c.signal, r.report.Signal)
			}
			if c.verdict == "OK" {
				assert.Equal(t, "fine\n", r.stdout)
				assert.Empty(t, r.stderr)
				return
			}
			_, last := splitLastLine(r.stderr)
			assert.Equal(t, verdictLine(c.verdict, c.detail), last)
		})
	}

	t.Run("sandbox error", func(t *testing.T) {
		// Only sh in reshd's PATH: no bwrap.
		path := t.TempDir()
		shell, err := exec.LookPath("sh")
		require.NoError(t, err)
		require.NoError(t, os.Symlink(shell, filepath.Join(path, "sh")))
		nobw := startReshdAt(t, "127.0.0.1:0", []string{"PATH=" + path})
		r := submitJob(t, nobw, nil, writeProgram(t, "ok.sh", "echo never\n"))
		assert.Equal(t, 125, r.code)
		assert.Equal(t, "SANDBOX_ERROR", r.report.Verdict)
		assert.Empty(t, r.stdout)
		assert.Contains(t, r.report.Detail, "bwrap (bubblewrap) not found: install it")
		assert.Equal(t, verdictLine("SANDBOX_ERROR", r.report.Detail), r.stderr)

		// Languages are looked for where jobs run (the sandbox's PATH), not
		// in reshd's: python is there, and its job gets the same verdict.
		start := time.Now()
		code, stdout, stderr := runReshjob(t, nobw, "", "run", writeProgram(t, "hello.py", "print(1)\n"))
		assert.Equal(t, 125, code)
		assert.Empty(t, stdout)
		assert.Contains(t, stderr, "reshjob: SANDBOX_ERROR (sandbox: bwrap (bubblewrap) not found: install it")
		assert.Less(t, time.Since(start), 5*time.Second)
	})
}

// Limits asked per job apply, and are capped by the executor's ceiling
// (4 times the defaults): a program forking until it cannot gets fewer
// than -procs 10 processes, more than the default 64 but at most 256
// with -procs 100000; -output 1G stops it at 64 MiB. With reshd
// -job-ceiling, -time 1h, -mem 10G and -output 1G get the ceiling's, and
// the defaults above it are capped too.
func TestReshjobLimitsCapped(t *testing.T) {
	skipWithout(t, "gcc")
	d := startJobReshd(t)
	forks := writeProgram(t, "forks.c", forkAll)
	count := func(procs string) int {
		r := submitJob(t, d, nil, "-procs", procs, forks)
		require.Equal(t, 0, r.code, "stderr %q", r.stderr)
		n, err := strconv.Atoi(strings.TrimSpace(r.stdout))
		require.NoError(t, err, "%q", r.stdout)
		return n
	}
	assert.Less(t, count("10"), 10)
	n := count("100000")
	assert.Greater(t, n, 64, "the per-job limit, not the default")
	assert.LessOrEqual(t, n, 256, "the ceiling")

	flood := writeProgram(t, "flood.sh", "yes 0123456789abcdef\n")
	r := submitJob(t, d, nil, "-output", "1G", flood)
	assert.Equal(t, 122, r.code)
	assert.Equal(t, "stdout beyond 64 MiB", r.report.Detail)
	assert.EqualValues(t, 64<<20, r.report.Stdout)
	assert.Len(t, r.stdout, 64<<20)

	t.Run("reshd -job-ceiling", func(t *testing.T) {
		low := startJobReshd(t, "-job-ceiling", "time=1s,mem=32M,procs=20,output=64K")
		r := submitJob(t, low, nil, "-time", "1h", writeProgram(t, "sleep.sh", "sleep 9\n"))
		assert.Equal(t, 124, r.code)
		assert.Equal(t, "wall time 1s exceeded", r.report.Detail)
		r = submitJob(t, low, nil, "-mem", "10G", writeProgram(t, "alloc.c", alloc10GiB))
		assert.Equal(t, 123, r.code)
		assert.Equal(t, "memory limit 32 MiB exceeded", r.report.Detail)
		r = submitJob(t, low, nil, "-output", "1G", flood)
		assert.Equal(t, 122, r.code)
		assert.Equal(t, "stdout beyond 64 KiB", r.report.Detail)
		assert.Len(t, r.stdout, 64<<10)
		// A ceiling below a default caps the default too.
		r = submitJob(t, low, nil, forks)
		require.Equal(t, 0, r.code, "stderr %q", r.stderr)
		n, err := strconv.Atoi(strings.TrimSpace(r.stdout))
		require.NoError(t, err, "%q", r.stdout)
		assert.Less(t, n, 20)
	})
}
