package client

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Progress reports lcat and ltee transfers to the user.
type Progress interface {
	// Start begins reporting one transfer.
	Start(tool, path string) Meter
}

// Meter follows one transfer.
type Meter interface {
	// Opened gives the transfer's total size, -1 if it is unknown.
	Opened(size int64)
	// Update reports the bytes transferred so far.
	Update(n int64)
	// Done ends the transfer's report; calling it again does nothing.
	Done()
}

// noProgress reports nothing: stderr is not a terminal, or -q.
type noProgress struct{}

func (noProgress) Start(string, string) Meter { return noProgress{} }
func (noProgress) Opened(int64)               {}
func (noProgress) Update(int64)               {}
func (noProgress) Done()                      {}

// Progress line timing.
const (
	progressDelay   = time.Second            // a transfer shorter than this shows nothing
	progressRefresh = 250 * time.Millisecond // at most 4 refreshes a second
)

// lineProgress draws one status line on a terminal for all the transfers
// under way: "lcat data.csv: 45% of 1.2 GiB, 80.0 MiB/s, 12s left" for one,
// "3 transfers: 45% of 1.2 GiB, 80.0 MiB/s, 12s left" for several. The
// line is rewritten in place ("\r", the text, clear to end of line) and
// cleared when the last transfer ends.
//
// Why one combined line rather than one line per transfer: a block of
// several lines must be erased by moving the cursor up, which is only right
// if resh knows exactly where every line ends. It does not: a line wider
// than the terminal wraps (and a resize rewraps it), and remote stderr,
// notices, and in a pty session the remote program itself, write to the
// same terminal and move the cursor. One line, kept narrower than the
// terminal, is erased by "\r\x1b[K" wherever the terminal stands, so it
// stays correct whatever else is written. Ready-made bars (schollz/
// progressbar: one bar; vbauerster/mpb: a multi-line block redrawn with
// cursor movement that wants every other write to go through it) have the
// same problem or do not fit, hence this small renderer.
//
// Other output on the terminal goes through guard (install does it for
// resh's stderr): it erases the line first, and the line comes back at the
// next refresh, only once that output has ended its line.
//
// Meters only store counters (atomics): a terminal that blocks never
// slows a transfer. The line is drawn by a ticker goroutine that runs
// while transfers are under way, and by Done.
type lineProgress struct {
	mu  *sync.Mutex // shared with everything else writing to w
	w   io.Writer
	now func() time.Time

	// width returns the terminal's width in columns, 0 if unknown (then,
	// or if nil, 80).
	width func() int
	// ticks returns the redraw ticker and its stop; nil for a real
	// ticker every progressRefresh.
	ticks func() (<-chan time.Time, func())

	smu    sync.Mutex    // guards active and quit
	active []*lineMeter  // transfers under way, in start order
	quit   chan struct{} // closed to stop the ticker goroutine
	ended  chan struct{} // closed when it has stopped

	// Under mu:
	shown   bool   // a status line is on the terminal
	last    string // the line last drawn: not drawn again while shown
	midLine bool   // other output left the cursor mid-line: draw nothing
}

// Start begins following a transfer; the first one starts the ticker.
func (p *lineProgress) Start(tool, path string) Meter {
	if tool == "" {
		tool = "transfer"
	}
	m := &lineMeter{p: p, name: tool + " " + path, start: p.now()}
	m.size.Store(-1)
	p.smu.Lock()
	p.active = append(p.active, m)
	if len(p.active) == 1 {
		p.startTicker()
	}
	p.smu.Unlock()
	return m
}

// startTicker starts the goroutine that redraws the line; p.smu is held.
func (p *lineProgress) startTicker() {
	ticks := p.ticks
	if ticks == nil {
		ticks = func() (<-chan time.Time, func()) {
			t := time.NewTicker(progressRefresh)
			return t.C, t.Stop
		}
	}
	c, stop := ticks()
	quit, ended := make(chan struct{}), make(chan struct{})
	p.quit, p.ended = quit, ended
	go func() {
		defer close(ended)
		defer stop()
		for {
			select {
			case <-quit:
				return
			case <-c:
				p.redraw()
			}
		}
	}()
}

// finish removes m; the last transfer stops the ticker and clears the line.
func (p *lineProgress) finish(m *lineMeter) {
	p.smu.Lock()
	i := indexOf(p.active, m)
	if i < 0 {
		p.smu.Unlock()
		return
	}
	p.active = append(p.active[:i], p.active[i+1:]...)
	var ended chan struct{}
	if len(p.active) == 0 {
		close(p.quit)
		ended = p.ended
	}
	p.smu.Unlock()
	if ended != nil {
		<-ended // it may be drawing: wait before clearing
	}
	p.redraw()
}

func indexOf(ms []*lineMeter, m *lineMeter) int {
	for i, x := range ms {
		if x == m {
			return i
		}
	}
	return -1
}

// redraw draws the line for the transfers under way, or clears it when
// none has lasted progressDelay.
func (p *lineProgress) redraw() {
	p.smu.Lock()
	stats := make([]transferStat, 0, len(p.active))
	now := p.now()
	long := false
	for _, m := range p.active {
		st := transferStat{name: m.name, n: m.n.Load(), size: m.size.Load(), elapsed: now.Sub(m.start)}
		long = long || st.elapsed >= progressDelay
		stats = append(stats, st)
	}
	p.smu.Unlock()
	width := 80
	if p.width != nil {
		if w := p.width(); w > 0 {
			width = w
		}
	}
	line := ""
	if long {
		line = statusLine(stats, width)
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case line == "" && p.shown:
		_, _ = io.WriteString(p.w, "\r\x1b[K")
		p.shown = false
	case line != "" && !p.midLine && !(p.shown && line == p.last):
		_, _ = io.WriteString(p.w, "\r"+line+"\x1b[K")
		p.shown, p.last = true, line
	}
}

// guard returns w (which writes to the terminal the line is drawn on)
// erasing the line before each write. Its Write must be called with p.mu
// held, as resh's stderr (syncWriter) does.
func (p *lineProgress) guard(w io.Writer) io.Writer { return &guardedWriter{p: p, w: w} }

type guardedWriter struct {
	p *lineProgress
	w io.Writer
}

func (g *guardedWriter) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return g.w.Write(b)
	}
	if g.p.shown {
		_, _ = io.WriteString(g.p.w, "\r\x1b[K")
		g.p.shown = false
	}
	n, err := g.w.Write(b)
	g.p.midLine = b[len(b)-1] != '\n'
	return n, err
}

// lineMeter follows one transfer of a lineProgress.
type lineMeter struct {
	p     *lineProgress
	name  string
	start time.Time
	n     atomic.Int64
	size  atomic.Int64 // -1: unknown
	done  sync.Once
}

func (m *lineMeter) Opened(size int64) { m.size.Store(size) }
func (m *lineMeter) Update(n int64)    { m.n.Store(n) }
func (m *lineMeter) Done()             { m.done.Do(func() { m.p.finish(m) }) }

// transferStat is one transfer as the status line sees it.
type transferStat struct {
	name    string
	n, size int64 // size -1: unknown
	elapsed time.Duration
}

// statusLine formats the transfers under way in fewer than width columns:
// "lcat data.csv: 45% of 1.2 GiB, 80.0 MiB/s, 12s left" (size known),
// "ltee out.txt: 300.0 MiB, 80.0 MiB/s" (size unknown), "3 transfers: …"
// (percentage and time left only if every size is known). The rate is
// each transfer's average since it started, summed.
func statusLine(ts []transferStat, width int) string {
	if len(ts) == 0 {
		return ""
	}
	var n, size int64
	var rate float64
	known := true
	for _, t := range ts {
		n += t.n
		if t.size < 0 {
			known = false
		} else {
			size += max(t.size, t.n)
		}
		if t.elapsed > 0 {
			rate += float64(t.n) / t.elapsed.Seconds()
		}
	}
	var stats string
	if known {
		pct := int64(100)
		if size > 0 {
			pct = n * 100 / size
		}
		stats = fmt.Sprintf("%d%% of %s, %s/s", pct, formatBytes(float64(size)), formatBytes(rate))
		if left := size - n; left > 0 && rate > 0 {
			stats += ", " + formatLeft(time.Duration(float64(left)/rate*float64(time.Second))) + " left"
		}
	} else {
		stats = fmt.Sprintf("%s, %s/s", formatBytes(float64(n)), formatBytes(rate))
	}
	name := ts[0].name
	if len(ts) > 1 {
		name = fmt.Sprintf("%d transfers", len(ts))
	}
	return fit(name, stats, width-1)
}

// fit joins "name: stats" within cols columns, shortening the name's path
// from the left first ("lcat …to/data.csv"), then cutting the end.
func fit(name, stats string, cols int) string {
	line := name + ": " + stats
	if utf8.RuneCountInString(line) <= cols {
		return line
	}
	tool, path, ok := strings.Cut(name, " ")
	if ok {
		tool += " "
	} else {
		tool, path = "", name
	}
	room := cols - utf8.RuneCountInString(tool+": "+stats) // for the path
	if r := []rune(path); room >= 8 {
		return tool + "…" + string(r[len(r)-(room-1):]) + ": " + stats
	}
	if cols <= 0 {
		return ""
	}
	return string([]rune(line)[:cols])
}

// formatLeft writes a time left: "12s", "3m05s", "1h02m".
func formatLeft(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second) // round up: never "0s left"
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	return fmt.Sprintf("%dh%02dm", s/3600, s/60%60)
}

// formatBytes writes a byte count with a binary unit: "512 B", "12.3 MiB".
func formatBytes(n float64) string {
	if n < 1024 {
		return fmt.Sprintf("%.0f B", n)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB"}
	u := -1
	for n >= 1024 && u < len(units)-1 {
		n /= 1024
		u++
	}
	return fmt.Sprintf("%.1f %s", n, units[u])
}

// install sets p up on resh's terminal: the terminal's width, and resh's
// stderr guarded so that every other line written there (remote stderr,
// notices) erases the status line first. p.mu must be r.stderr's lock.
func (p *lineProgress) install(r *runner, width func() int) {
	p.width = width
	r.stderr.mu.Lock()
	defer r.stderr.mu.Unlock()
	if _, ok := r.stderr.w.(*guardedWriter); !ok {
		r.stderr.w = p.guard(r.stderr.w)
	}
}

// lockedWriter takes mu around each write of w.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// output returns w guarded like resh's stderr: resh's stdout, when it is
// the terminal the line is drawn on, goes through it so that its lines do
// not land after a status line.
func (p *lineProgress) output(w io.Writer) io.Writer {
	return lockedWriter{mu: p.mu, w: p.guard(w)}
}
