package sandbox

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// poolBase is a directory for a Pool's work directories that nobody can
// reach when reshd runs as root.
func poolBase(t testing.TB) string {
	t.Helper()
	base, err := os.MkdirTemp("", "sandbox-pool-test-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(base, 0o711))
	t.Cleanup(func() { os.RemoveAll(base) })
	return base
}

// exec runs argv in sb and returns the result and its stdout.
func execIn(t *testing.T, sb *Sandbox, c Command) (Result, string) {
	t.Helper()
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	res, err := sb.Exec(context.Background(), c)
	require.NoError(t, err)
	t.Logf("%v: %+v stderr %q", c.Argv, res, errb.String())
	return res, out.String()
}

func TestPoolHandsOutFreshSandboxes(t *testing.T) {
	p := NewPool(poolBase(t), 2, Options{})
	defer p.Close()
	var dirs []string
	for i := range 4 {
		sb, err := p.Get()
		require.NoError(t, err)
		dirs = append(dirs, sb.Dir())
		entries, err := os.ReadDir(sb.Dir())
		require.NoError(t, err)
		assert.Empty(t, entries, "a work directory starts empty")
		res, out := execIn(t, sb, Command{Argv: []string{"sh", "-c", `ls -A /work; ls -A /tmp; echo $1 > left; echo $1 > /tmp/left`, "sh", string(rune('a' + i))}})
		assert.Equal(t, Exited, res.Outcome, res.Detail)
		assert.Equal(t, 0, res.Code)
		assert.Empty(t, strings.TrimSpace(out), "nothing of an earlier job is there")
		sb.Close()
		_, err = os.Stat(sb.Dir())
		assert.True(t, os.IsNotExist(err), "Close removes the work directory")
	}
	assert.Len(t, uniq(dirs), 4)
}

func uniq(s []string) map[string]bool {
	m := map[string]bool{}
	for _, x := range s {
		m[x] = true
	}
	return m
}

func TestPoolWarmsInTheBackground(t *testing.T) {
	p := NewPool(poolBase(t), 1, Options{})
	sb, err := p.Get()
	require.NoError(t, err)
	sb.Close()
	// The pool builds the next one by itself.
	select {
	case sb = <-p.ready:
		p.ready <- sb
	case <-time.After(startTimeout):
		t.Fatal("no sandbox was built in the background")
	}
	p.Close()
	_, err = os.Stat(sb.Dir())
	assert.True(t, os.IsNotExist(err), "Close closes the sandboxes not handed out")
	_, err = p.Get()
	assert.ErrorIs(t, err, ErrPoolClosed)
}

func TestTwoCommandsOneSandbox(t *testing.T) {
	// A compile and its program: files carry over, stdin goes to the one
	// command given it, limits are each command's own.
	p := NewPool(poolBase(t), 1, Options{})
	defer p.Close()
	sb, err := p.Get()
	require.NoError(t, err)
	defer sb.Close()
	require.NoError(t, sb.WriteFile("prog.sh", []byte("read x; echo \"got $x\"\n"), 0o644))

	res, out := execIn(t, sb, Command{
		Argv:   []string{"sh", "-c", `cat; cp prog.sh built.sh; python3 -c 'b = bytearray(150 << 20); print(len(b) >> 20)'`},
		Limits: Limits{Memory: 400 << 20},
	})
	assert.Equal(t, Exited, res.Outcome, res.Detail)
	assert.Equal(t, "150\n", out, "the first command reads /dev/null and may use 400 MiB")

	res, out = execIn(t, sb, Command{
		Argv:  []string{"sh", "built.sh"},
		Stdin: strings.NewReader("input\n"),
	})
	assert.Equal(t, Exited, res.Outcome, res.Detail)
	assert.Equal(t, "got input\n", out)

	res, _ = execIn(t, sb, Command{Argv: []string{"python3", "-c", allocate10GiB}, Limits: Limits{Memory: 100 << 20}})
	assert.Contains(t, []Outcome{MemoryLimit, Exited}, res.Outcome, "the third command has 100 MiB: %s", res.Detail)
	assert.NotEqual(t, 0, res.Code)

	_, err = sb.Exec(context.Background(), Command{Argv: []string{"true"}, Stdin: strings.NewReader("")})
	assert.ErrorIs(t, err, ErrStdinTaken)
}

func TestExecAfterALimit(t *testing.T) {
	p := NewPool(poolBase(t), 1, Options{})
	defer p.Close()
	sb, err := p.Get()
	require.NoError(t, err)
	defer sb.Close()
	res, _ := execIn(t, sb, Command{Argv: []string{"sleep", "100"}, Limits: Limits{Wall: 300 * time.Millisecond}})
	assert.Equal(t, TimeLimit, res.Outcome)
	res, _ = execIn(t, sb, Command{Argv: []string{"true"}})
	assert.Equal(t, SandboxError, res.Outcome)
	assert.Contains(t, res.Detail, errEnded)
}

func TestArgumentsVerbatim(t *testing.T) {
	p := NewPool(poolBase(t), 1, Options{})
	defer p.Close()
	sb, err := p.Get()
	require.NoError(t, err)
	defer sb.Close()
	args := []string{"plain", "two words", "it's", `"dq"`, "$(id)", "`id`", "back\\slash", "new\nline", "", "$NL", "*", "; exit 3"}
	res, out := execIn(t, sb, Command{
		Argv: append([]string{"python3", "-c", "import sys, os; print(repr(sys.argv[1:])); print(os.environ['X'])"}, args...),
		Env:  []string{"X=a 'b'\nc"},
	})
	require.Equal(t, Exited, res.Outcome, res.Detail)
	assert.Equal(t, `['plain', 'two words', "it's", '"dq"', '$(id)', '`+"`id`"+`', 'back\\slash', 'new\nline', '', '$NL', '*', '; exit 3']`+"\na 'b'\nc\n", out)
}

func TestExecMisuse(t *testing.T) {
	p := NewPool(poolBase(t), 1, Options{})
	defer p.Close()
	sb, err := p.Get()
	require.NoError(t, err)
	defer sb.Close()
	ctx := context.Background()
	_, err = sb.Exec(ctx, Command{})
	assert.ErrorIs(t, err, ErrNoCommand)
	_, err = sb.Exec(ctx, Command{Argv: []string{"true"}, Env: []string{"A-B=1"}})
	assert.ErrorIs(t, err, ErrBadEnv)
	_, err = sb.Exec(ctx, Command{Argv: []string{"true", "a\x00b"}})
	assert.ErrorIs(t, err, ErrBadArg)
	assert.ErrorIs(t, sb.WriteFile("../x", nil, 0o644), os.ErrInvalid)
	res, _ := execIn(t, sb, Command{Argv: []string{"true"}})
	assert.Equal(t, Exited, res.Outcome, "misuse does not end the sandbox")
}

func TestOutputAllPassedOn(t *testing.T) {
	// Exec returns once all the command wrote is passed on, even with a
	// process it left behind that goes on writing.
	p := NewPool(poolBase(t), 1, Options{})
	defer p.Close()
	sb, err := p.Get()
	require.NoError(t, err)
	defer sb.Close()
	res, out := execIn(t, sb, Command{Argv: []string{"sh", "-c", `head -c 3000000 /dev/zero; (while :; do echo more >&2; done) & echo end`}})
	assert.Equal(t, Exited, res.Outcome, res.Detail)
	assert.Equal(t, 3000004, len(out))
	assert.EqualValues(t, 3000004, res.Stdout)
	assert.True(t, strings.HasSuffix(out, "end\n"))
}

func TestCloseDuringExec(t *testing.T) {
	p := NewPool(poolBase(t), 1, Options{})
	defer p.Close()
	sb, err := p.Get()
	require.NoError(t, err)
	marker := "CLOSE_TEST_" + filepath.Base(sb.Dir())
	done := make(chan Result)
	go func() {
		res, _ := sb.Exec(context.Background(), Command{Argv: []string{"sleep", "100"}, Env: []string{"M=" + marker}})
		done <- res
	}()
	require.Eventually(t, func() bool { return len(processesWith(marker)) > 0 }, 5*time.Second, 10*time.Millisecond)
	sb.Close()
	select {
	case res := <-done:
		assert.Equal(t, SandboxError, res.Outcome)
	case <-time.After(startTimeout):
		t.Fatal("Exec did not end when its sandbox was closed")
	}
	assert.Empty(t, processesWith(marker))
}

// BenchmarkPoolRun is BenchmarkRun's `true` in a sandbox the Pool built
// ahead: what a job waits for when the executor has had time to warm up.
func BenchmarkPoolRun(b *testing.B) {
	p := NewPool(poolBase(b), 2, Options{})
	defer p.Close()
	for b.Loop() {
		b.StopTimer()
		// Let the pool be warm, as between jobs.
		sb, err := p.Get()
		if err != nil {
			b.Fatal(err)
		}
		sb.Close()
		for len(p.ready) < p.size {
			time.Sleep(time.Millisecond)
		}
		b.StartTimer()
		sb, err = p.Get()
		if err != nil {
			b.Fatal(err)
		}
		res, err := sb.Exec(context.Background(), Command{Argv: []string{"true"}})
		sb.Close()
		if err != nil || res.Outcome != Exited || res.Code != 0 {
			b.Fatal(res, err)
		}
	}
}

func TestOutputOnBothStreamsPassedOn(t *testing.T) {
	// Both pipes may hold output when a command's end is reported: Exec
	// waits for both (it once counted stderr's bytes only from when it
	// was done waiting for stdout's, and waited forever).
	p := NewPool(poolBase(t), 1, Options{})
	defer p.Close()
	sb, err := p.Get()
	require.NoError(t, err)
	defer sb.Close()
	for range 20 {
		done := make(chan struct{})
		var out, errb bytes.Buffer
		var res Result
		go func() {
			defer close(done)
			res, err = sb.Exec(context.Background(), Command{
				Argv:   []string{"sh", "-c", `head -c 200000 /dev/zero & head -c 300000 /dev/zero >&2; wait`},
				Stdout: slowWriter{&out}, Stderr: &errb,
			})
		}()
		select {
		case <-done:
		case <-time.After(startTimeout):
			t.Fatal("Exec did not return")
		}
		require.NoError(t, err)
		require.Equal(t, Exited, res.Outcome, res.Detail)
		assert.Equal(t, 200000, out.Len())
		assert.Equal(t, 300000, errb.Len())
	}
}

// slowWriter is a client that takes its time with each write.
type slowWriter struct{ w *bytes.Buffer }

func (s slowWriter) Write(p []byte) (int, error) {
	time.Sleep(time.Millisecond)
	return s.w.Write(p)
}
