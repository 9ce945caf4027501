package client

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFormatBytes(t *testing.T) {
	for n, want := range map[float64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 12.3 * (1 << 20): "12.3 MiB", 5 << 30: "5.0 GiB",
	} {
		assert.Equal(t, want, formatBytes(n), "formatBytes(%v)", n)
	}
}

func TestFormatLeft(t *testing.T) {
	for d, want := range map[time.Duration]string{
		100 * time.Millisecond: "1s", 12 * time.Second: "12s", 59*time.Second + time.Millisecond: "1m00s",
		185 * time.Second: "3m05s", 62 * time.Minute: "1h02m", 30 * time.Hour: "30h00m",
	} {
		assert.Equal(t, want, formatLeft(d), "formatLeft(%v)", d)
	}
}

func TestStatusLine(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		name  string
		ts    []transferStat
		width int
		want  string
	}{
		{"size known", []transferStat{{name: "lcat data.csv", n: 45 * mib, size: 100 * mib, elapsed: 9 * time.Second}},
			80, "lcat data.csv: 45% of 100.0 MiB, 5.0 MiB/s, 11s left"},
		{"size unknown", []transferStat{{name: "ltee out.txt", n: 300 * mib, size: -1, elapsed: 4 * time.Second}},
			80, "ltee out.txt: 300.0 MiB, 75.0 MiB/s"},
		{"complete", []transferStat{{name: "lcat f", n: 10 * mib, size: 10 * mib, elapsed: 2 * time.Second}},
			80, "lcat f: 100% of 10.0 MiB, 5.0 MiB/s"},
		{"empty file", []transferStat{{name: "lcat f", size: 0, elapsed: 2 * time.Second}},
			80, "lcat f: 100% of 0 B, 0 B/s"},
		{"nothing yet", []transferStat{{name: "lcat f", size: 10 * mib}},
			80, "lcat f: 0% of 10.0 MiB, 0 B/s"},
		{"grown past its size", []transferStat{{name: "lcat f", n: 20 * mib, size: 10 * mib, elapsed: time.Second}},
			80, "lcat f: 100% of 20.0 MiB, 20.0 MiB/s"},
		{"several, sizes known", []transferStat{
			{name: "lcat a", n: 100 * mib, size: 400 * mib, elapsed: 2 * time.Second},
			{name: "lcat b", n: 350 * mib, size: 600 * mib, elapsed: 5 * time.Second},
		}, 80, "2 transfers: 45% of 1000.0 MiB, 120.0 MiB/s, 5s left"},
		{"several, one size unknown", []transferStat{
			{name: "lcat a", n: 100 * mib, size: 400 * mib, elapsed: 2 * time.Second},
			{name: "ltee b", n: 50 * mib, size: -1, elapsed: 1 * time.Second},
			{name: "ltee c", n: 0, size: -1, elapsed: 0},
		}, 80, "3 transfers: 150.0 MiB, 100.0 MiB/s"},
		{"long name shortened from the left", []transferStat{{name: "lcat some/very/long/path/to/data.csv", n: 0, size: -1, elapsed: time.Second}},
			30, "lcat …to/data.csv: 0 B, 0 B/s"},
		{"narrow terminal: cut", []transferStat{{name: "lcat data.csv", n: 45 * mib, size: 100 * mib, elapsed: 9 * time.Second}},
			20, "lcat data.csv: 45% "},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := statusLine(c.ts, c.width)
			if prefix, ok := strings.CutSuffix(c.want, " ..."); ok {
				assert.True(t, strings.HasPrefix(got, prefix), "got %q, want %q...", got, prefix)
			} else {
				assert.Equal(t, c.want, got)
			}
			assert.Less(t, len([]rune(got)), c.width, "the line must not wrap")
		})
	}
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testProgress is a lineProgress on a buffer, with a fake clock and a
// ticker the test drives through redraw.
func testProgress(width int) (*lineProgress, *fakeClock, *bytes.Buffer) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	var buf bytes.Buffer
	p := &lineProgress{mu: &sync.Mutex{}, w: &buf, now: clock.now,
		width: func() int { return width },
		ticks: func() (<-chan time.Time, func()) { return nil, func() {} }}
	return p, clock, &buf
}

// screen is what a terminal shows after out: "\r" returns to the start of
// the line, "\x1b[K" clears the rest.
func screen(out string) string {
	var lines []string
	var cur []rune
	col := 0
	for i := 0; i < len(out); {
		switch {
		case strings.HasPrefix(out[i:], "\x1b[K"):
			cur = cur[:col]
			i += 3
			continue
		case out[i] == '\r':
			col = 0
		case out[i] == '\n':
			lines = append(lines, string(cur))
			cur, col = nil, 0
		default:
			r := []rune(out[i:])[0]
			if col < len(cur) {
				cur[col] = r
			} else {
				cur = append(cur, r)
			}
			col++
			i += len(string(r))
			continue
		}
		i++
	}
	return strings.Join(append(lines, string(cur)), "\n")
}

func TestProgressShortTransferShowsNothing(t *testing.T) {
	p, clock, buf := testProgress(80)
	m := p.Start("lcat", "small")
	m.Opened(100)
	clock.advance(500 * time.Millisecond)
	m.Update(100)
	p.redraw()
	m.Done()
	assert.Empty(t, buf.String())
}

func TestProgressDrawnAndCleared(t *testing.T) {
	p, clock, buf := testProgress(80)
	m := p.Start("lcat", "data.csv")
	m.Opened(100 << 20)
	clock.advance(time.Second)
	m.Update(10 << 20)
	p.redraw()
	assert.Equal(t, "lcat data.csv: 10% of 100.0 MiB, 10.0 MiB/s, 9s left", screen(buf.String()))
	drawn := buf.Len()
	p.redraw()
	assert.Equal(t, drawn, buf.Len(), "the same line is not drawn again")

	clock.advance(time.Second)
	m.Update(50 << 20)
	p.redraw()
	assert.Equal(t, "lcat data.csv: 50% of 100.0 MiB, 25.0 MiB/s, 2s left", screen(buf.String()))

	m.Done()
	assert.Equal(t, "", screen(buf.String()), "the line is cleared at the end")
	assert.NotContains(t, buf.String(), "\n")
	m.Done() // twice is harmless
}

func TestProgressSeveralTransfers(t *testing.T) {
	p, clock, buf := testProgress(80)
	a := p.Start("lcat", "a")
	a.Opened(100 << 20)
	b := p.Start("ltee", "b")
	b.Opened(-1)
	clock.advance(2 * time.Second)
	a.Update(20 << 20)
	b.Update(10 << 20)
	p.redraw()
	assert.Equal(t, "2 transfers: 30.0 MiB, 15.0 MiB/s", screen(buf.String()))

	b.Done()
	assert.Equal(t, "lcat a: 20% of 100.0 MiB, 10.0 MiB/s, 8s left", screen(buf.String()),
		"one ending redraws the line for the others")
	a.Done()
	assert.Equal(t, "", screen(buf.String()))
}

func TestProgressInterleavedOutput(t *testing.T) {
	p, clock, buf := testProgress(80)
	stderr := p.guard(buf) // as install does: written with p.mu held
	write := func(s string) {
		p.mu.Lock()
		defer p.mu.Unlock()
		_, err := stderr.Write([]byte(s))
		require.NoError(t, err)
	}
	m := p.Start("lcat", "f")
	m.Opened(10 << 20)
	clock.advance(time.Second)
	m.Update(1 << 20)
	p.redraw()
	write("remote says hi\n")
	assert.Equal(t, "remote says hi\n", screen(buf.String()), "the line is erased before other output")

	p.redraw()
	assert.Equal(t, "remote says hi\nlcat f: 10% of 10.0 MiB, 1.0 MiB/s, 9s left", screen(buf.String()))

	// A partial line (a prompt) stays: no status line until its newline.
	write("Password: ")
	p.redraw()
	assert.Equal(t, "remote says hi\nPassword: ", screen(buf.String()))
	write("\n")
	p.redraw()
	assert.Equal(t, "remote says hi\nPassword: \nlcat f: 10% of 10.0 MiB, 1.0 MiB/s, 9s left", screen(buf.String()))

	// stdout on the same terminal.
	var out bytes.Buffer
	stdout := p.output(&out)
	_, err := stdout.Write([]byte("data\n"))
	require.NoError(t, err)
	assert.Equal(t, "data\n", out.String())
	assert.Equal(t, "remote says hi\nPassword: \n", screen(buf.String()))
	m.Done()
}

func TestProgressTicker(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	locked := lockedWriter{mu: &mu, w: &buf}
	p := &lineProgress{mu: &sync.Mutex{}, w: locked, now: time.Now}
	read := func() string {
		mu.Lock()
		defer mu.Unlock()
		return buf.String()
	}
	m := p.Start("lcat", "f")
	m.Opened(1 << 30)
	m.Update(1 << 20)
	// The ticker redraws every progressRefresh: the line shows once the
	// transfer has lasted progressDelay, without further updates.
	assert.Eventually(t, func() bool { return strings.Contains(read(), "lcat f: 0% of 1.0 GiB") },
		5*time.Second, 10*time.Millisecond)
	m.Done()
	assert.Equal(t, "", screen(read()))
	// Another transfer starts the ticker again; goleak checks that it ends.
	p.Start("ltee", "g").Done()
}
