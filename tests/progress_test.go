package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gate is a FIFO a remote command waits on (read x < gate) until the test
// opens it: the test decides when the transfer goes on, without sleeping.
type gate struct {
	t    *testing.T
	path string
	f    *os.File
}

func newGate(t *testing.T) *gate {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gate")
	require.NoError(t, syscall.Mkfifo(path, 0o600))
	// Opened read-write, the FIFO never blocks this side, and what is
	// written stays there for the reader until the test ends.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return &gate{t: t, path: path, f: f}
}

// open lets one waiting read through.
func (g *gate) open() {
	_, err := g.f.WriteString("go\n")
	require.NoError(g.t, err)
}

// screen is what a terminal shows after out, one string per line: "\r"
// returns to the start of the line, "\x1b[K" clears the rest of it.
func screen(out string) []string {
	var lines []string
	var cur []rune
	col := 0
	for len(out) > 0 {
		switch {
		case strings.HasPrefix(out, "\x1b[K"):
			cur = cur[:col]
			out = out[3:]
			continue
		case out[0] == '\r':
			col = 0
		case out[0] == '\n':
			lines = append(lines, string(cur))
			cur, col = nil, 0
		default:
			r := []rune(out)[0]
			if col < len(cur) {
				cur[col] = r
			} else {
				cur = append(cur, r)
			}
			col++
			out = out[len(string(r)):]
			continue
		}
		out = out[1:]
	}
	return append(lines, string(cur))
}

var progressRE = regexp.MustCompile(`lcat \S*data\.bin: \d+% of 64\.0 MiB, [\d.]+ [KMG]?i?B/s(, \S+ left)?`)

// A long lcat on a terminal: its size, percentage, rate and time left on
// one line, rewritten in place, erased before another line of stderr and
// drawn again after it, and cleared at the end.
func TestProgressOnTerminal(t *testing.T) {
	d := startReshd(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data.bin")
	require.NoError(t, os.WriteFile(data, nil, 0o600))
	require.NoError(t, os.Truncate(data, 64<<20))
	g := newGate(t)
	// The remote reader takes 1 MiB, then waits for the gate: the
	// transfer stalls (flow control) and lasts as long as the test wants.
	cmd := "lcat " + data + " | { head -c 1048576 >/dev/null; read x < " + g.path +
		"; echo remote-says-hi >&2; read x < " + g.path + "; cat >/dev/null; }"
	tm := startTerm(t, 24, 200, append([]string{"-allow", dir}, d.args(d.addr, cmd)...)...)

	out := seen(tm, 15*time.Second, "resh: lcat: reading "+data+" (64.0 MiB)", "% of 64.0 MiB")
	assert.Regexp(t, progressRE, out)
	g.open()
	out = seen(tm, 15*time.Second, "remote-says-hi")
	assert.Contains(t, out, "\x1b[Kremote-says-hi", "the line is erased before a line of stderr")
	seen(tm, 15*time.Second, "remote-says-hi\r\n", "% of 64.0 MiB") // and drawn again after it
	g.open()
	require.Equal(t, 0, tm.wait(30*time.Second))
	<-tm.done

	out = seen(tm, time.Second)
	last := strings.LastIndex(out, "% of 64.0 MiB")
	assert.Contains(t, out[last:], "\r\x1b[K", "the line is cleared at the end")
	lines := screen(out)
	assert.Contains(t, lines, "remote-says-hi", "a stderr line stands alone on its line")
	for _, l := range lines {
		assert.NotContains(t, l, "% of", "nothing of the progress line is left on the screen")
	}
}

// seen waits until tm's whole output (tm.expect is not used here: it
// consumes it) contains each of want in turn, and returns it.
func seen(tm *term, within time.Duration, want ...string) string {
	tm.t.Helper()
	deadline := time.After(within)
	for {
		tm.mu.Lock()
		s := tm.out.String()
		tm.mu.Unlock()
		rest, ok := s, true
		for _, w := range want {
			i := strings.Index(rest, w)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(w):]
		}
		if ok {
			return s
		}
		select {
		case <-tm.more:
		case <-tm.done:
			tm.mu.Lock()
			s2 := tm.out.String()
			tm.mu.Unlock()
			if s2 == s {
				tm.t.Fatalf("resh ended before printing %q; output: %q", want, s)
			}
		case <-deadline:
			tm.t.Fatalf("no %q within %v; output: %q", want, within, s)
		}
	}
}
