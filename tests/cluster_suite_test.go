package tests

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The issue-4 suite again, through a master with two local executors:
// what works against a standalone reshd works the same through a master
// (commands_test.go, transfer_test.go, interactive_test.go and
// resilience_test.go hold the standalone versions).
func TestMasterSuite(t *testing.T) {
	t.Parallel()
	m := startMaster(t, []string{"-local", "2"}, "local-1", "local-2")
	showLogsOnFailure(t, m)
	a := m.addr

	t.Run("core suite", func(t *testing.T) {
		// resilience_test.go's own checks, on each executor in turn and
		// as placed.
		assert.Equal(t, 6, suite(t, m, a))
	})

	t.Run("on each executor", func(t *testing.T) {
		for _, name := range []string{"local-1", "local-2"} {
			command := "echo where-" + name + "; echo err >&2; exit 4"
			r := resh(t, "", "", append([]string{"-on", name}, m.args(a, command)...)...)
			assert.Equal(t, result{"where-" + name + "\n", "err\n", 4}, r)
			assert.Equal(t, name, relayedOn(t, m, command))
		}
	})

	t.Run("commands", func(t *testing.T) {
		dir := remoteDir(t, m, a)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("line one\nline two\n"), 0o644))
		for _, command := range []string{"ls", "ls -l", "cat notes.txt", "echo $((6*7))"} {
			assert.Equal(t, local(t, dir, "", command), resh(t, "", "", m.args(a, command)...), command)
		}
		in := "x = 6\nprint(x * 7)\nimport sys\nprint('to stderr', file=sys.stderr)\n"
		if _, err := exec.LookPath("python3"); err == nil {
			got := resh(t, "", in, m.args(a, "python3 -i")...)
			want := local(t, dir, in, "python3 -i")
			assert.Equal(t, want.stdout, got.stdout)
			assert.Equal(t, want.code, got.code)
			assert.Contains(t, got.stderr, "to stderr")
		}
	})

	t.Run("exit statuses", func(t *testing.T) {
		for _, tc := range []struct {
			command string
			code    int
		}{
			{"true", 0},
			{"exit 3", 3},
			{"false", 1},
			{"kill -TERM $$", 128 + 15},
			{"kill -KILL $$", 128 + 9},
			{"kill -INT $$", 128 + 2},
			{"no-such-command-here", 127},
		} {
			r := resh(t, "", "", m.args(a, tc.command)...)
			assert.Equal(t, tc.code, r.code, "%q: stderr %q", tc.command, r.stderr)
		}
	})

	t.Run("signal forwarded", func(t *testing.T) {
		// No child outlives the shell holding its stdout: the trap runs
		// between two short sleeps.
		b := startBg(t, m.args(a, "trap 'echo got-term; exit 7' TERM; echo started; while :; do sleep 0.1; done")...)
		b.waitOut(15*time.Second, "started")
		require.NoError(t, b.cmd.Process.Signal(syscall.SIGTERM))
		assert.Equal(t, 7, b.wait(t, 15*time.Second))
		assert.Equal(t, "started\ngot-term\n", b.stdout())

		b = startBg(t, m.args(a, "echo started; exec sleep 30")...)
		b.waitOut(15*time.Second, "started")
		require.NoError(t, b.cmd.Process.Signal(syscall.SIGTERM))
		assert.Equal(t, 128+15, b.wait(t, 15*time.Second))
	})

	t.Run("stdin and outputs", func(t *testing.T) {
		data := randomText(1<<20, 31)
		r := resh(t, "", data, m.args(a, "sha256sum")...)
		assert.Equal(t, result{fmt.Sprintf("%x  -\n", sha256.Sum256([]byte(data))), "", 0}, r)
		r = resh(t, "", "", m.args(a, "echo out; echo err >&2; echo out2")...)
		assert.Equal(t, result{"out\nout2\n", "err\n", 0}, r)
		// EOF on stdin reaches the remote command.
		r = resh(t, "", "a\nb\n", m.args(a, "wc -l")...)
		assert.Equal(t, "2", strings.TrimSpace(r.stdout))
		r = resh(t, "", "", m.args(a, "cat; echo eof-seen")...)
		assert.Equal(t, result{"eof-seen\n", "", 0}, r)
	})

	t.Run("interactive", func(t *testing.T) {
		tm := startTerm(t, 30, 100, m.args(a)...)
		tm.send("stty size\n")
		tm.expect("30 100", 15*time.Second)
		require.NoError(t, pty.Setsize(tm.ptmx, &pty.Winsize{Rows: 40, Cols: 120}))
		tm.send(`while [ "$(stty size)" != "40 120" ]; do sleep 0.05; done; echo resized-$((1+1))` + "\n")
		tm.expect("resized-2", 15*time.Second)
		tm.send("sh -c 'echo sl$((0+1))eeping; exec sleep 30'\n")
		tm.expect("sl1eeping", 15*time.Second)
		tm.send("\x03")
		tm.send("echo after-$((40+2))\n")
		tm.expect("after-42", 15*time.Second)
		tm.send("exit 5\n")
		assert.Equal(t, 5, tm.wait(15*time.Second))
	})

	t.Run("escape", func(t *testing.T) {
		tm := startTerm(t, 24, 80, append([]string{"-t"}, m.args(a, "sleep 60")...)...)
		// The command runs before the escape is typed.
		m.waitLog(t, 15*time.Second, "session started", `command="sleep 60"`)
		tm.send("\r~.")
		assert.Equal(t, 255, tm.wait(15*time.Second))
	})

	t.Run("lcat sort ltee", func(t *testing.T) {
		dir := t.TempDir()
		data := randomText(1<<20, 37)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "data.csv"), []byte(data), 0o644))
		r := resh(t, dir, "", m.args(a, "lcat data.csv | LC_ALL=C sort | ltee sorted.csv | wc -l")...)
		require.Equal(t, 0, r.code, "stderr %q", r.stderr)
		ls := strings.SplitAfter(data, "\n")
		ls = ls[:len(ls)-1]
		sort.Strings(ls)
		got, err := os.ReadFile(filepath.Join(dir, "sorted.csv"))
		require.NoError(t, err)
		assert.True(t, string(got) == strings.Join(ls, ""), "sorted.csv: %d bytes, want %d", len(got), len(data))
		assert.Equal(t, fmt.Sprint(len(ls)), strings.TrimSpace(r.stdout))

		r = resh(t, dir, "", m.args(a, "echo one | ltee x y >/dev/null && echo two | ltee -a x >/dev/null && lcat x y")...)
		assert.Equal(t, result{"one\ntwo\none\n", "", 0}, r)
	})

	t.Run("refused paths", func(t *testing.T) {
		dir, outside := t.TempDir(), t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("secret\n"), 0o644))
		require.NoError(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "link")))
		for _, path := range []string{"/etc/passwd", "../" + filepath.Base(outside) + "/secret", "link", filepath.Join(outside, "secret")} {
			r := resh(t, dir, "", m.args(a, "lcat '"+path+"'; echo status $?")...)
			assert.Contains(t, r.stdout, "status 1", path)
			assert.NotContains(t, r.stdout, "secret", path)
			assert.Contains(t, r.stderr, "lcat: ", path)
		}
		target := "/tmp/should-not-exist-" + filepath.Base(dir)
		r := resh(t, dir, "", m.args(a, "echo x | ltee "+target+"; echo status $?")...)
		assert.Contains(t, r.stdout, "status 1")
		assert.Contains(t, r.stderr, "ltee: ")
		assert.NoFileExists(t, target)
		r = resh(t, dir, "", append([]string{"-allow", outside}, m.args(a, "lcat "+filepath.Join(outside, "secret"))...)...)
		assert.Equal(t, result{"secret\n", "", 0}, r, "with -allow")
	})

	// What went downstream went to the file too: head took 100000
	// bytes, the file holds at least that (the bytes of a write to stdout
	// that broke midway go to the file too, proto/spec.md §3.3).
	t.Run("ltee cut reported", func(t *testing.T) {
		dir := t.TempDir()
		r := resh(t, dir, "", m.args(a, "yes | ltee out | head -c 100000 >/dev/null")...)
		got, err := os.ReadFile(filepath.Join(dir, "out.partial"))
		require.NoError(t, err)
		assert.GreaterOrEqual(t, len(got), 100000)
		assert.Equal(t, fmt.Sprintf("resh: ltee: out was cut after %d bytes (ltee was killed by SIGPIPE): kept as out.partial\n", len(got)), r.stderr)
	})

	t.Run("concurrent transfers", func(t *testing.T) {
		dir := t.TempDir()
		names := []string{"a", "b", "c", "d"}
		for i, name := range names {
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(randomText(256<<10, uint64(40+i))), 0o644))
		}
		var wg sync.WaitGroup
		for s := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := ""
				for _, name := range names {
					cmd += fmt.Sprintf("lcat %s | ltee copy%d%s >/dev/null & ", name, s, name)
				}
				r := resh(t, dir, "", m.args(a, cmd+"wait")...)
				assert.Equal(t, 0, r.code, "session %d: stderr %q", s, r.stderr)
			}()
		}
		wg.Wait()
		for s := range 3 {
			for _, name := range names {
				want, _ := os.ReadFile(filepath.Join(dir, name))
				got, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("copy%d%s", s, name)))
				assert.NoError(t, err)
				assert.True(t, string(got) == string(want), "session %d copy of %s: %d bytes, want %d", s, name, len(got), len(want))
			}
		}
	})

	t.Run("concurrent clients", func(t *testing.T) {
		// Eight clients on four slots (two executors of two CPUs here, or
		// more): some wait their turn, none is lost.
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				data := randomText(128<<10, uint64(50+i))
				r := resh(t, "", data, m.args(a, "sha256sum")...)
				assert.Equal(t, fmt.Sprintf("%x  -\n", sha256.Sum256([]byte(data))), r.stdout, "client %d: stderr %q", i, r.stderr)
			}()
		}
		wg.Wait()
	})
}

// A master without executors answers -executors with the header alone.
func TestMasterExecutorsEmpty(t *testing.T) {
	t.Parallel()
	m := startMaster(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A master without executors still answers -executors, with a header
	// and nothing else.
	out, err := reshCommand(ctx, "-executors", m.addr).Output()
	require.NoError(t, err)
	assert.Equal(t, []string{"NAME", "ADDRESS", "STATE", "TASKS", "CPU", "LANGUAGES", "VERSION", "SINCE"}, strings.Fields(strings.TrimSpace(string(out))))
}
