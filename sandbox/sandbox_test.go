package sandbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// job is one sandboxed run in a test, with a marker in its environment to
// find its processes on the host.
type job struct {
	t      *testing.T
	spec   Spec
	marker string
	out    bytes.Buffer
	err    bytes.Buffer
}

func newJob(t *testing.T, argv ...string) *job {
	t.Helper()
	require.NoError(t, Available(), "the sandbox must work where the tests run")
	b := make([]byte, 8)
	rand.Read(b)
	j := &job{t: t, marker: "SANDBOX_TEST_MARKER=" + hex.EncodeToString(b)}
	j.spec = Spec{
		Dir:  workDir(t),
		Argv: argv,
		Env:  append(append([]string(nil), DefaultEnv...), j.marker),
	}
	j.spec.Stdout, j.spec.Stderr = &j.out, &j.err
	return j
}

func sh(t *testing.T, script string, args ...string) *job {
	return newJob(t, append([]string{"sh", "-c", script, "sh"}, args...)...)
}

// run runs the job and checks that none of its processes is left.
func (j *job) run() Result {
	j.t.Helper()
	res, err := Run(context.Background(), j.spec)
	require.NoError(j.t, err)
	j.noneLeft()
	j.t.Logf("%+v", res)
	return res
}

// noneLeft checks the host's process table for processes of the job.
func (j *job) noneLeft() {
	j.t.Helper()
	assert.Empty(j.t, processesWith(j.marker), "processes of the job left behind")
}

// processesWith lists the pids whose command line or environment holds s.
func processesWith(s string) []string {
	var pids []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' || e.Name() == fmt.Sprint(os.Getpid()) {
			continue
		}
		for _, f := range []string{"cmdline", "environ"} {
			b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), f))
			if bytes.Contains(b, []byte(s)) {
				pids = append(pids, e.Name())
				break
			}
		}
	}
	return pids
}

// workDir makes a work directory that nobody can reach (t.TempDir's
// parents are private to root).
func workDir(t testing.TB) string {
	t.Helper()
	base, err := os.MkdirTemp("", "sandbox-test-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(base, 0o711))
	t.Cleanup(func() { os.RemoveAll(base) })
	dir := filepath.Join(base, "work")
	require.NoError(t, os.Mkdir(dir, 0o755))
	return dir
}

func TestHello(t *testing.T) {
	j := sh(t, `read x; echo "hello $x $1"; echo oops >&2; pwd; echo "$HOME $LANG $PATH"; exit 3`, "arg")
	j.spec.Stdin = strings.NewReader("world\n")
	res := j.run()
	assert.Equal(t, Exited, res.Outcome, res.Detail)
	assert.Equal(t, 3, res.Code)
	assert.Equal(t, "hello world arg\n/work\n/work C.UTF-8 "+DefaultPath+"\n", j.out.String())
	assert.Equal(t, "oops\n", j.err.String())
	assert.EqualValues(t, j.out.Len(), res.Stdout)
	assert.EqualValues(t, j.err.Len(), res.Stderr)
	assert.Positive(t, res.Wall)
	if useCgroups && os.Geteuid() == 0 {
		assert.Positive(t, res.PeakMemory)
	}
}

func TestNoStdin(t *testing.T) {
	res := sh(t, `cat; echo done`).run()
	assert.Equal(t, Exited, res.Outcome)
	assert.Equal(t, 0, res.Code)
}

func TestEnvironment(t *testing.T) {
	j := newJob(t, "env")
	j.spec.Env = nil
	res := j.run()
	assert.Equal(t, 0, res.Code, j.err.String())
	// sh adds PWD.
	assert.ElementsMatch(t, append([]string{"PWD=/work"}, DefaultEnv...), strings.Fields(j.out.String()))
}

func TestUnprivileged(t *testing.T) {
	j := sh(t, `id -u; id -g; grep CapEff /proc/self/status; echo x > made`)
	res := j.run()
	require.Equal(t, 0, res.Code, j.err.String())
	assert.Equal(t, "65534\n65534\nCapEff:\t0000000000000000\n", j.out.String())
	if os.Geteuid() == 0 {
		// Outside too: what it writes is nobody's, not root's.
		fi, err := os.Stat(filepath.Join(j.spec.Dir, "made"))
		require.NoError(t, err)
		assert.EqualValues(t, jobUID, fileUID(fi))
	}
}

func TestDescriptorsClosed(t *testing.T) {
	j := sh(t, `ls /proc/self/fd`)
	res := j.run()
	require.Equal(t, 0, res.Code, j.err.String())
	// 0, 1, 2 and ls's own directory.
	assert.Equal(t, []string{"0", "1", "2", "3"}, strings.Fields(j.out.String()))
}

func TestSignaled(t *testing.T) {
	res := sh(t, `kill -SEGV $$`).run()
	assert.Equal(t, Signaled, res.Outcome)
	assert.Equal(t, 11, res.Signal)
	assert.Equal(t, -1, res.Code)
}

func TestSandboxError(t *testing.T) {
	testExtraArgs = []string{"--ro-bind", "/nonexistent-sandbox-test", "/x"}
	defer func() { testExtraArgs = nil }()
	j := sh(t, `echo ran`)
	res := j.run()
	assert.Equal(t, SandboxError, res.Outcome)
	assert.Contains(t, res.Detail, "nonexistent-sandbox-test")
	assert.Empty(t, j.out.String())
}

func TestMisuse(t *testing.T) {
	ctx := context.Background()
	_, err := Run(ctx, Spec{Dir: workDir(t)})
	assert.ErrorIs(t, err, ErrNoCommand)
	_, err = Run(ctx, Spec{Dir: "relative", Argv: []string{"true"}})
	assert.ErrorIs(t, err, ErrBadDir)
	_, err = Run(ctx, Spec{Dir: "/nonexistent-sandbox-test", Argv: []string{"true"}})
	assert.ErrorIs(t, err, ErrBadDir)
	_, err = Run(ctx, Spec{Dir: workDir(t), Argv: []string{"true"}, Env: []string{"X"}})
	assert.ErrorIs(t, err, ErrBadEnv)
	if os.Geteuid() == 0 {
		_, err = Run(ctx, Spec{Dir: t.TempDir(), Argv: []string{"true"}})
		assert.ErrorIs(t, err, ErrDirHidden)
	}
}

func TestCanceled(t *testing.T) {
	j := sh(t, `echo up; exec sleep 1000`)
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := newLineWaiter()
	j.spec.Stdout = pw
	go func() { <-pr; cancel() }()
	res, err := Run(ctx, j.spec)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, SandboxError, res.Outcome)
	j.noneLeft()
}

// newLineWaiter returns a writer and a channel closed at its first write.
func newLineWaiter() (<-chan struct{}, *firstWrite) {
	w := &firstWrite{c: make(chan struct{})}
	return w.c, w
}

type firstWrite struct {
	c    chan struct{}
	done bool
}

func (w *firstWrite) Write(p []byte) (int, error) {
	if !w.done {
		w.done = true
		close(w.c)
	}
	return len(p), nil
}

// The attack corpus of issue 12.

// forkBomb is :(){ :|:& };: with a name dash accepts, and a sleep to keep
// the job up while it runs.
const forkBomb = `bomb(){ bomb|bomb& }; bomb; sleep 1; echo alive`

func TestForkBomb(t *testing.T) {
	j := sh(t, forkBomb)
	j.spec.Limits = Limits{Wall: 1500 * time.Millisecond, Procs: 32}
	res := j.run()
	assert.NotContains(t, j.err.String(), "rror")
	assert.Contains(t, j.err.String(), "fork")
	assert.Contains(t, []Outcome{Exited, TimeLimit}, res.Outcome)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// cgroupsUsable reports whether Run can make cgroups here, and whether
// they account CPU.
func cgroupsUsable() bool {
	ok, _ := cgroupState()
	return ok
}

func cgroupState() (usable, cpu bool) {
	if !useCgroups {
		return false, false
	}
	cg, err := newCgroup(Limits{}.withDefaults())
	if err != nil {
		return false, false
	}
	defer cg.remove()
	return true, cg.cpuacct != ""
}

func TestParallelLoops(t *testing.T) {
	// Eight processes share the CPU limit when the cgroup accounts CPU.
	if _, cpu := cgroupState(); !cpu {
		t.Skip("no cgroup CPU accounting here: the CPU limit is per process")
	}
	j := sh(t, `for i in 1 2 3 4 5 6 7 8; do (while :; do :; done) & done; wait`)
	j.spec.Limits = Limits{CPU: time.Second, Wall: 20 * time.Second}
	res := j.run()
	assert.Equal(t, TimeLimit, res.Outcome)
	assert.Contains(t, res.Detail, "cpu time")
	assert.Less(t, res.CPU, 3*time.Second)
}

func TestInfiniteLoop(t *testing.T) {
	j := sh(t, `while :; do :; done`)
	j.spec.Limits = Limits{CPU: time.Second, Wall: 20 * time.Second}
	res := j.run()
	assert.Equal(t, TimeLimit, res.Outcome)
	assert.Contains(t, res.Detail, "cpu time")
	// It ran until the CPU limit, give or take the accounting: the rlimit
	// counts in ticks and may fire before the cgroup counted the whole
	// second (885 ms seen under load).
	assert.Greater(t, res.CPU, 500*time.Millisecond)
	assert.Less(t, res.Wall, 10*time.Second)
}

func TestSleep(t *testing.T) {
	j := sh(t, `echo up; sleep 1000`)
	j.spec.Limits = Limits{Wall: 300 * time.Millisecond}
	// The marker finds the job's processes while it runs.
	var during []string
	j.spec.Stdout = writerFunc(func(p []byte) (int, error) {
		if during == nil {
			during = processesWith(j.marker)
		}
		return len(p), nil
	})
	res := j.run()
	assert.NotEmpty(t, during)
	assert.Equal(t, TimeLimit, res.Outcome)
	assert.Equal(t, "wall time 300ms exceeded", res.Detail)
	assert.Less(t, res.Wall, 5*time.Second)
}

// allocate10GiB touches 10 GiB, 1 MiB at a time.
const allocate10GiB = `l = []
for i in range(10 << 10):
    l.append(b"x" * (1 << 20))
print("allocated")`

func TestAllocate10GiB(t *testing.T) {
	j := newJob(t, "python3", "-c", allocate10GiB)
	j.spec.Limits = Limits{Memory: 64 << 20}
	res := j.run()
	if !cgroupsUsable() {
		// RLIMIT_AS: the allocation fails, and the program with it.
		assert.Equal(t, Exited, res.Outcome)
		assert.Contains(t, j.err.String(), "MemoryError")
		return
	}
	assert.Equal(t, MemoryLimit, res.Outcome, j.err.String())
	assert.Equal(t, "memory limit 64 MiB exceeded", res.Detail)
	assert.NotContains(t, j.out.String(), "allocated")
	assert.LessOrEqual(t, res.PeakMemory, int64(64<<20))
}

func TestPrintForever(t *testing.T) {
	j := newJob(t, "yes")
	j.spec.Limits = Limits{Output: 1 << 20}
	res := j.run()
	assert.Equal(t, OutputLimit, res.Outcome)
	assert.Equal(t, "stdout beyond 1 MiB", res.Detail)
	assert.EqualValues(t, 1<<20, res.Stdout)
	assert.Equal(t, 1<<20, j.out.Len())
	assert.Equal(t, strings.Repeat("y\n", 1<<19), j.out.String())
}

func TestStderrForever(t *testing.T) {
	j := sh(t, `while :; do echo eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee >&2; done`)
	j.spec.Limits = Limits{Output: 64 << 10}
	res := j.run()
	assert.Equal(t, OutputLimit, res.Outcome)
	assert.EqualValues(t, 64<<10, res.Stderr)
}

func TestFileSize(t *testing.T) {
	j := sh(t, `head -c 2097152 /dev/zero > big`)
	j.spec.Limits = Limits{FileSize: 1 << 20}
	res := j.run()
	assert.NotEqual(t, 0, res.Code)
	fi, err := os.Stat(filepath.Join(j.spec.Dir, "big"))
	require.NoError(t, err)
	assert.EqualValues(t, 1<<20, fi.Size())
}

// connect exits 0 when it could open a TCP connection to 127.0.0.1:$1.
const connect = `import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2).close()
except OSError as e:
    print(e)
    sys.exit(1)
print("connected")`

func TestNoNetwork(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	port := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	for _, p := range []string{"22", port} {
		j := newJob(t, "python3", "-c", connect, p)
		res := j.run()
		assert.Equal(t, 1, res.Code, "port %s: %s%s", p, j.out.String(), j.err.String())
		assert.NotContains(t, j.out.String(), "connected")
	}
	// Nothing reached the listener.
	l.(*net.TCPListener).SetDeadline(time.Now())
	_, err = l.Accept()
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	// Only the loopback exists.
	j := sh(t, `ls /sys/class/net 2>/dev/null || cat /proc/net/dev`)
	j.run()
	assert.NotContains(t, j.out.String(), "eth")
}

func TestSecretsHidden(t *testing.T) {
	// Stand-ins for RESH_HOME's private key, another job's directory and
	// reshd's home, all readable by anyone on the host.
	secret := workDir(t)
	key := filepath.Join(secret, "id_ed25519")
	require.NoError(t, os.WriteFile(key, []byte("PRIVATE"), 0o644))
	other := sh(t, `echo mine > answer`)
	other.run()
	home, _ := os.UserHomeDir()
	paths := []string{"/etc/shadow", key, filepath.Join(other.spec.Dir, "answer"), home, "/root", "/home", "/var", "/run"}
	for _, p := range paths {
		j := sh(t, `cat "$1" || ls "$1"`, p)
		res := j.run()
		assert.NotEqual(t, 0, res.Code, "%s is visible: %s", p, j.out.String())
		assert.NotContains(t, j.out.String(), "PRIVATE")
		assert.NotContains(t, j.out.String(), "mine")
	}
	// The /etc there is the sandbox's.
	j := sh(t, `ls /etc; cat /etc/passwd`)
	j.run()
	assert.NotContains(t, j.out.String(), "shadow")
	assert.NotContains(t, j.out.String(), "/root:/bin/bash")
}

func TestWriteOutside(t *testing.T) {
	for _, p := range []string{"/usr/x", "/etc/x", "/etc/passwd", "/etc/localtime", "/x", "/proc/x", "/usr/bin/sh", "/etc/ld.so.cache", "/dev/x", "/sys/x", "/run/x"} {
		j := sh(t, `echo pwned > "$1"`, p)
		res := j.run()
		assert.NotEqual(t, 0, res.Code, "wrote %s", p)
		assert.Contains(t, j.err.String(), "sh: 1: cannot create "+p)
	}
	// passwd and group are files of bwrap's root, the job's own, but
	// read-only with it.
	res := sh(t, `chmod 0666 /etc/passwd || rm -f /etc/group`).run()
	assert.NotEqual(t, 0, res.Code)
	_, err := os.Stat("/x")
	assert.ErrorIs(t, err, os.ErrNotExist)
	res = sh(t, `echo ok > /work/ok && echo ok > /tmp/ok && echo ok > /dev/shm/ok && echo ok > /dev/null && mkdir -p d/e && echo ok > d/e/f`).run()
	assert.Equal(t, 0, res.Code)
}

func TestBackgroundProcess(t *testing.T) {
	j := sh(t, `sleep 100 & (setsid sleep 101 &) ; nohup sleep 102 >/dev/null 2>&1 & echo left`)
	start := time.Now()
	res := j.run()
	assert.Equal(t, 0, res.Code, j.err.String())
	assert.Equal(t, "left\n", j.out.String())
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestTmpBounded(t *testing.T) {
	// The tmpfs is as large as the memory limit; with a cgroup, its pages
	// count as the job's memory and the limit comes first.
	j := sh(t, `head -c 12000000 /dev/zero > /tmp/a; head -c 12000000 /dev/zero > /tmp/b; echo written`)
	j.spec.Limits = Limits{Memory: 16 << 20}
	res := j.run()
	if res.Outcome != MemoryLimit {
		assert.Contains(t, j.err.String(), "No space left")
	}
}

func TestTmpNotShared(t *testing.T) {
	res := sh(t, `echo secret > /tmp/left; test -f /tmp/left`).run()
	require.Equal(t, 0, res.Code)
	j := sh(t, `ls -A /tmp; test ! -e /tmp/left`)
	res = j.run()
	assert.Equal(t, 0, res.Code)
	assert.Empty(t, j.out.String())
}

// TestRlimitFallback runs the limits that a cgroup normally enforces with
// rlimits only, as where reshd cannot make a cgroup.
func TestRlimitFallback(t *testing.T) {
	useCgroups = false
	defer func() { useCgroups = true }()

	// RLIMIT_NPROC counts every process of the uid on the host, the
	// processes of the jobs before this one that are still being reaped
	// too: a limit close to 0 could stop bwrap itself.
	j := sh(t, forkBomb)
	j.spec.Limits = Limits{Wall: 1500 * time.Millisecond, Procs: 64}
	res := j.run()
	assert.Contains(t, []Outcome{Exited, TimeLimit}, res.Outcome, res.Detail)
	assert.Contains(t, j.err.String(), "fork")

	j = newJob(t, "python3", "-c", allocate10GiB)
	j.spec.Limits = Limits{Memory: 256 << 20}
	res = j.run()
	assert.NotEqual(t, 0, res.Code)
	assert.NotContains(t, j.out.String(), "allocated")
	assert.Contains(t, j.err.String(), "MemoryError")
}

func TestBwrapArgs(t *testing.T) {
	a := bwrapArgs("/jobs/1", []string{"A=b=c"}, 1<<20)
	s := " " + strings.Join(a, " ") + " "
	for _, want := range []string{
		" --unshare-user --uid 65534 --gid 65534 ", " --unshare-pid ", " --unshare-net ",
		" --unshare-ipc ", " --unshare-uts ", " --die-with-parent ", " --new-session ",
		" --clearenv ", " --setenv A b=c ", " --size 1048576 --tmpfs /tmp ", " --proc /proc ", " --dev /dev ",
		" --bind /jobs/1 /work ", " --chdir /work ", " --ro-bind /usr /usr ",
	} {
		assert.Contains(t, s, want)
	}
	assert.NotContains(t, s, "shadow")
	assert.NotContains(t, s, "/home")
	assert.NotContains(t, s, "/root")
	assert.NotContains(t, s, "bind / ")
	assert.Equal(t, []string{"--", "/bin/sh", "-c", innerScript, "sh"}, a[len(a)-5:])
}

func TestLimitsDefaults(t *testing.T) {
	l := Limits{}.withDefaults()
	assert.Equal(t, Limits{Wall: 3 * time.Minute, CPU: 3 * time.Minute, Memory: 512 << 20, Procs: 64, Output: 16 << 20, FileSize: 64 << 20}, l)
	assert.EqualValues(t, 2, Limits{CPU: 1500 * time.Millisecond}.cpuSeconds())
	assert.Equal(t, "ulimit -St 2 && ulimit -Ht 3 && ulimit -f 2048 && ulimit -c 0",
		ulimits(Limits{CPU: 2 * time.Second, FileSize: 1 << 20}.rlimits(true)))
	assert.Equal(t, "ulimit -St 1 && ulimit -Ht 2 && ulimit -f 0 && ulimit -c 0 && ulimit -v 1 && ulimit -p 3",
		ulimits(Limits{CPU: time.Millisecond, FileSize: 511, Memory: 2047, Procs: 3}.rlimits(false)))
	assert.Equal(t, "ulimit -f 9007199254740992", ulimits([]rlimit{{'f', 512, math.MaxUint64, math.MaxUint64}}))
}

func TestCommandLine(t *testing.T) {
	// The command runs only if every limit could be set.
	line := (&Sandbox{}).commandLine(Command{Argv: []string{"echo", "it's"}, Env: []string{"X=a\nb"}}, Limits{CPU: time.Second}.withDefaults())
	assert.Equal(t, `( exec 7>&- 8<&- </dev/null; export 'X=a'"$NL"'b'; `+
		`ulimit -St 1 && ulimit -Ht 2 && ulimit -f 131072 && ulimit -c 0 && ulimit -v 524288 && ulimit -p 64 && exec 'echo' 'it'\''s' )`, line)
}

// TestRlimitsSet reads the limits of the command from /proc: each rlimit
// is set, soft and hard, with a cgroup and without.
func TestRlimitsSet(t *testing.T) {
	for _, cg := range []bool{true, false} {
		t.Run(fmt.Sprintf("cgroup=%v", cg), func(t *testing.T) {
			useCgroups = cg
			defer func() { useCgroups = true }()
			j := newJob(t, "cat", "/proc/self/limits")
			j.spec.Limits = Limits{CPU: 2 * time.Second, FileSize: 3 << 20, Memory: 300 << 20, Procs: 40}
			res := j.run()
			require.Equal(t, 0, res.Code, j.err.String())
			got := map[string]string{}
			for _, line := range strings.Split(j.out.String(), "\n") {
				f := strings.Fields(line)
				if len(f) >= 5 && f[0] == "Max" {
					got[strings.Join(f[1:len(f)-3], " ")] = f[len(f)-3] + ":" + f[len(f)-2]
				}
			}
			want := map[string]string{"cpu time": "2:3", "file size": "3145728:3145728", "core file size": "0:0"}
			if !cgroupsUsable() {
				want["address space"] = "314572800:314572800"
				want["processes"] = "40:40"
			}
			for k, v := range want {
				assert.Equal(t, v, got[k], k)
			}
		})
	}
}

func TestAvailableMessage(t *testing.T) {
	t.Setenv("PATH", "/nonexistent")
	err := probe()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "apt-get install bubblewrap")
}

func TestConcurrentJobs(t *testing.T) {
	// Jobs at once do not see each other's files, /tmp or processes.
	const n = 6
	jobs := make([]*job, n)
	results := make(chan Result, n)
	for i := range jobs {
		jobs[i] = sh(t, `echo $1 > /tmp/mine; echo $1 > mine; sleep 0.2; cat /tmp/mine mine; ls /tmp; ps -e -o pid= | wc -l`, fmt.Sprint(i))
	}
	for _, j := range jobs {
		go func() {
			res, err := Run(context.Background(), j.spec)
			assert.NoError(t, err)
			results <- res
		}()
	}
	for range jobs {
		assert.Equal(t, 0, (<-results).Code)
	}
	for i, j := range jobs {
		f := strings.Fields(j.out.String())
		require.Len(t, f, 4, j.err.String())
		assert.Equal(t, []string{fmt.Sprint(i), fmt.Sprint(i), "mine"}, f[:3])
		// init, sh, ps and wc, perhaps sleep on its way out.
		procs, err := strconv.Atoi(f[3])
		require.NoError(t, err)
		assert.LessOrEqual(t, procs, 5)
		j.noneLeft()
	}
}

func TestOutcomeString(t *testing.T) {
	assert.Equal(t, "time limit", TimeLimit.String())
	assert.Equal(t, "sandbox error", SandboxError.String())
	assert.Equal(t, "outcome(9)", Outcome(9).String())
}
