package job

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/lang"
	"resh/proto"
	"resh/sandbox"
)

const testTimeout = 20 * time.Second

// buffer is a bytes.Buffer safe for the job's writers and the test.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// result is one job's verdict and output.
type result struct {
	v        proto.Verdict
	out, err *buffer
	tmp      string
}

// runJob runs src in language name with stdin and args, each job in a
// temporary directory of its own (to check that it is left empty).
func runJob(t *testing.T, name, src, stdin string, limits proto.JobLimits, unsafe bool, args ...string) result {
	t.Helper()
	l, ok := lang.Builtin().ByName(name)
	require.True(t, ok, name)
	r := result{out: &buffer{}, err: &buffer{}, tmp: tempDir(t)}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	r.v = Run(ctx, Spec{
		Language: l, Source: []byte(src), Args: args, Limits: limits,
		Stdin: strings.NewReader(stdin), Stdout: r.out, Stderr: r.err,
		Unsafe: unsafe, Executor: "test-executor", TempDir: r.tmp,
	})
	left, err := os.ReadDir(r.tmp)
	require.NoError(t, err)
	assert.Empty(t, left, "the work directory is removed")
	return r
}

// tempDir is a directory for work directories, searchable by others as
// the sandbox wants when the tests run as root (t.TempDir's is not).
func tempDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "resh-job-test-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o711))
	return dir
}

func needTool(t *testing.T, name string) {
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s is not installed", name)
	}
}

const helloC = `#include <stdio.h>
int main(int argc, char **argv) {
	char line[100];
	if (!fgets(line, sizeof line, stdin)) return 2;
	printf("hello %s, %s", argv[1], line);
	fprintf(stderr, "to stderr\n");
	return 0;
}
`

func TestHelloC(t *testing.T) {
	needTool(t, "gcc")
	for _, unsafe := range []bool{false, true} {
		r := runJob(t, "c", helloC, "from stdin\n", proto.JobLimits{}, unsafe, "world")
		assert.Equal(t, proto.VerdictOK, r.v.Verdict, "%+v %s", r.v, r.err)
		assert.Equal(t, "hello world, from stdin\n", r.out.String())
		assert.Equal(t, "to stderr\n", r.err.String())
		assert.Equal(t, int64(len("hello world, from stdin\n")), r.v.Stdout)
		assert.Equal(t, int64(len("to stderr\n")), r.v.Stderr)
		assert.Equal(t, "test-executor", r.v.Executor)
		assert.Equal(t, unsafe, r.v.Unsafe)
		assert.Equal(t, proto.Exit{}, ExitOf(r.v))
	}
}

func TestHelloPython(t *testing.T) {
	needTool(t, "python3")
	src := "import sys\nprint('hello', sys.argv[1], sys.stdin.read().strip())\n"
	r := runJob(t, "python", src, "in\n", proto.JobLimits{}, false, "world")
	assert.Equal(t, proto.VerdictOK, r.v.Verdict, "%+v %s", r.v, r.err)
	assert.Equal(t, "hello world in\n", r.out.String())
	assert.Positive(t, r.v.WallMS)
}

func TestHelloSh(t *testing.T) {
	src := "read line\necho \"$# $1 $2 [$line]\"\n"
	r := runJob(t, "sh", src, "a line\nmore\n", proto.JobLimits{}, false, "x", "y z")
	assert.Equal(t, proto.VerdictOK, r.v.Verdict, "%+v %s", r.v, r.err)
	assert.Equal(t, "2 x y z [a line]\n", r.out.String())
}

func TestHelloJava(t *testing.T) {
	needTool(t, "javac")
	src := `import java.util.Scanner;
public class Greeter {
	public static void main(String[] args) {
		String line = new Scanner(System.in).nextLine();
		System.out.println("hello " + args[0] + ", " + line);
	}
}
`
	r := runJob(t, "java", src, "from stdin\n", proto.JobLimits{}, false, "world")
	if strings.Contains(r.err.String(), "initialization of VM") {
		// Without a memory cgroup the limit is RLIMIT_AS, less than
		// the JVM reserves (sandbox.Limits.Memory).
		t.Skipf("the JVM cannot start within the rlimit fallback's address space: %s", r.err)
	}
	assert.Equal(t, proto.VerdictOK, r.v.Verdict, "%+v %s", r.v, r.err)
	assert.Equal(t, "hello world, from stdin\n", r.out.String())
}

func TestCompileError(t *testing.T) {
	needTool(t, "gcc")
	r := runJob(t, "c", "int main(void) { return undeclared; }\n", "", proto.JobLimits{}, false)
	assert.Equal(t, proto.VerdictCompileError, r.v.Verdict, "%+v", r.v)
	assert.Contains(t, r.err.String(), "undeclared")
	assert.Equal(t, int64(len(r.err.String())), r.v.Stderr)
	assert.Empty(t, r.out.String())
	assert.Equal(t, proto.Exit{Code: proto.ExitCompileError}, ExitOf(r.v))
}

func TestRuntimeErrorStatus(t *testing.T) {
	r := runJob(t, "sh", "echo before\nexit 3\n", "", proto.JobLimits{}, false)
	assert.Equal(t, proto.VerdictRuntimeError, r.v.Verdict, "%+v", r.v)
	assert.Equal(t, 3, r.v.Status)
	assert.Equal(t, "before\n", r.out.String())
	assert.Equal(t, proto.Exit{Code: 3}, ExitOf(r.v))
}

func TestRuntimeErrorSignal(t *testing.T) {
	for _, unsafe := range []bool{false, true} {
		r := runJob(t, "sh", "kill -SEGV $$\n", "", proto.JobLimits{}, unsafe)
		assert.Equal(t, proto.VerdictRuntimeError, r.v.Verdict, "%+v", r.v)
		assert.Equal(t, 11, r.v.Signal)
		assert.Equal(t, "killed by SIGSEGV", r.v.Detail)
		assert.Equal(t, proto.Exit{Signal: 11}, ExitOf(r.v))
	}
}

func TestTimeLimit(t *testing.T) {
	for _, unsafe := range []bool{false, true} {
		start := time.Now()
		r := runJob(t, "sh", "echo started\nsleep 1000\n", "", proto.JobLimits{WallMS: 300}, unsafe)
		assert.Equal(t, proto.VerdictTimeLimit, r.v.Verdict, "%+v", r.v)
		assert.Equal(t, "started\n", r.out.String())
		assert.Less(t, time.Since(start), 5*time.Second)
		assert.Equal(t, proto.Exit{Code: proto.ExitTimeLimit}, ExitOf(r.v))
	}
}

func TestMemoryLimit(t *testing.T) {
	needTool(t, "python3")
	src := "l = []\nfor i in range(10 << 10):\n    l.append(b'x' * (1 << 20))\nprint('allocated')\n"
	r := runJob(t, "python", src, "", proto.JobLimits{Memory: 64 << 20}, false)
	assert.NotContains(t, r.out.String(), "allocated")
	// Without a cgroup (reshd neither root nor delegated one) the sandbox
	// cannot tell the limit from the program's MemoryError.
	if r.v.Verdict == proto.VerdictRuntimeError {
		assert.Contains(t, r.err.String(), "MemoryError")
		t.Skip("no memory cgroup here: the limit is the program's MemoryError")
	}
	assert.Equal(t, proto.VerdictMemoryLimit, r.v.Verdict, "%+v %s", r.v, r.err)
	assert.Equal(t, proto.Exit{Code: proto.ExitMemoryLimit}, ExitOf(r.v))
}

func TestOutputLimit(t *testing.T) {
	for _, unsafe := range []bool{false, true} {
		r := runJob(t, "sh", "while :; do echo 0123456789; done\n", "", proto.JobLimits{Output: 1000}, unsafe)
		assert.Equal(t, proto.VerdictOutputLimit, r.v.Verdict, "%+v", r.v)
		assert.Len(t, r.out.String(), 1000)
		assert.Equal(t, int64(1000), r.v.Stdout)
		assert.Equal(t, proto.Exit{Code: proto.ExitOutputLimit}, ExitOf(r.v))
	}
}

// TestUnsafeRunsOutsideTheSandbox: an unsafe job sees the host's file
// system, the sandboxed one sees /work.
func TestUnsafeRunsOutsideTheSandbox(t *testing.T) {
	r := runJob(t, "sh", "pwd\n", "", proto.JobLimits{}, true)
	assert.Equal(t, proto.VerdictOK, r.v.Verdict, "%+v %s", r.v, r.err)
	assert.True(t, r.v.Unsafe)
	assert.Equal(t, r.tmp, filepath.Dir(strings.TrimSpace(r.out.String())))

	r = runJob(t, "sh", "pwd\n", "", proto.JobLimits{}, false)
	assert.Equal(t, "/work\n", r.out.String())
	assert.False(t, r.v.Unsafe)
}

// TestWorkDirectory: the program's work directory is private while it
// runs and removed after, files the program wrote included.
func TestWorkDirectory(t *testing.T) {
	src := "echo data > left.txt\nmkdir sub && echo more > sub/f\nls\n"
	for _, unsafe := range []bool{false, true} {
		r := runJob(t, "sh", src, "", proto.JobLimits{}, unsafe)
		assert.Equal(t, proto.VerdictOK, r.v.Verdict, "%+v %s", r.v, r.err)
		assert.Equal(t, "left.txt\nmain.sh\nsub\n", r.out.String())
	}
	r := runJob(t, "sh", "stat -c %a .\n", "", proto.JobLimits{}, true)
	assert.Equal(t, "700\n", r.out.String())
}

// TestCanceled: a job whose context ends is killed at once.
func TestCanceled(t *testing.T) {
	l, _ := lang.Builtin().ByName("sh")
	ctx, cancel := context.WithCancel(context.Background())
	out := &buffer{}
	done := make(chan proto.Verdict, 1)
	go func() {
		done <- Run(ctx, Spec{Language: l, Source: []byte("echo up\nsleep 1000\n"), Stdout: out, TempDir: tempDir(t)})
	}()
	deadline := time.Now().Add(testTimeout)
	for !strings.Contains(out.String(), "up") {
		require.True(t, time.Now().Before(deadline), "the job did not start")
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case v := <-done:
		assert.Equal(t, proto.VerdictSandboxError, v.Verdict)
		assert.Contains(t, v.Detail, "canceled")
	case <-time.After(testTimeout):
		t.Fatal("the job was not killed")
	}
}

// TestNoSandbox: where the sandbox cannot run, programs are refused with
// SANDBOX_ERROR and how to fix it, unless the job is unsafe.
func TestNoSandbox(t *testing.T) {
	defer func(f func() error) { available = f }(available)
	available = func() error { return errors.New("sandbox: bwrap is not installed: install bubblewrap") }
	r := runJob(t, "sh", "echo ran\n", "", proto.JobLimits{}, false)
	assert.Equal(t, proto.VerdictSandboxError, r.v.Verdict)
	assert.Contains(t, r.v.Detail, "install bubblewrap")
	assert.Contains(t, r.v.Detail, "-unsafe-no-sandbox")
	assert.Empty(t, r.out.String())
	assert.Equal(t, proto.Exit{Code: proto.ExitSandboxError}, ExitOf(r.v))

	r = runJob(t, "sh", "echo ran\n", "", proto.JobLimits{}, true)
	assert.Equal(t, proto.VerdictOK, r.v.Verdict)
	assert.Equal(t, "ran\n", r.out.String())
}

// TestCeiling: the executor's ceiling caps what the job asks for.
func TestCeiling(t *testing.T) {
	l, _ := lang.Builtin().ByName("sh")
	out := &buffer{}
	v := Run(context.Background(), Spec{
		Language: l, Source: []byte("while :; do echo 0123456789; done\n"),
		Limits: proto.JobLimits{Output: 1 << 20}, Ceiling: sandbox.Limits{Output: 100},
		Stdout: out, TempDir: tempDir(t),
	})
	assert.Equal(t, proto.VerdictOutputLimit, v.Verdict, "%+v", v)
	assert.Len(t, out.String(), 100)
}

// TestNoClass: a Java program without a class is a compile error, said
// on stderr.
func TestNoClass(t *testing.T) {
	r := runJob(t, "java", "// nothing\n", "", proto.JobLimits{}, false)
	assert.Equal(t, proto.VerdictCompileError, r.v.Verdict, "%+v", r.v)
	assert.Contains(t, r.err.String(), "no class")
}
