package client

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Progress reports lcat and ltee transfers to the user.
type Progress interface {
	// Start begins reporting one transfer.
	Start(tool, path string) Meter
}

// Meter follows one transfer.
type Meter interface {
	// Update reports the bytes transferred so far.
	Update(n int64)
	// Done ends the transfer's report.
	Done()
}

// noProgress reports nothing: stderr is not a terminal.
type noProgress struct{}

func (noProgress) Start(string, string) Meter { return noProgress{} }
func (noProgress) Update(int64)               {}
func (noProgress) Done()                      {}

// Progress line timing.
const (
	progressDelay   = time.Second            // a transfer shorter than this shows nothing
	progressRefresh = 250 * time.Millisecond // at most 4 refreshes a second
)

// lineProgress draws one line per transfer on a terminal, rewritten in
// place ("\r" and clear to end of line) and finished with eol when done.
type lineProgress struct {
	mu  *sync.Mutex // shared with everything else writing to w
	w   io.Writer
	now func() time.Time
	eol func() string // "\n", or "\r\n" while the terminal is raw
}

func (p *lineProgress) Start(tool, path string) Meter {
	if tool == "" {
		tool = "transfer"
	}
	return &lineMeter{p: p, name: tool + " " + path, start: p.now()}
}

type lineMeter struct {
	p       *lineProgress
	name    string
	start   time.Time
	mu      sync.Mutex
	n       int64
	drawn   bool
	lastDrw time.Time
}

func (m *lineMeter) Update(n int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n = n
	now := m.p.now()
	if now.Sub(m.start) < progressDelay || (m.drawn && now.Sub(m.lastDrw) < progressRefresh) {
		return
	}
	m.draw(now, "")
}

func (m *lineMeter) Done() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.drawn {
		m.draw(m.p.now(), m.p.eol())
	}
}

// draw writes the line; the caller holds m.mu.
func (m *lineMeter) draw(now time.Time, end string) {
	m.drawn, m.lastDrw = true, now
	line := progressLine(m.name, m.n, now.Sub(m.start))
	m.p.mu.Lock()
	fmt.Fprintf(m.p.w, "\r%s\x1b[K%s", line, end)
	m.p.mu.Unlock()
}

// progressLine formats "lcat data.csv: 12.3 MiB 45.6 MiB/s".
func progressLine(name string, n int64, elapsed time.Duration) string {
	rate := 0.0
	if elapsed > 0 {
		rate = float64(n) / elapsed.Seconds()
	}
	return fmt.Sprintf("%s: %s %s/s", name, formatBytes(float64(n)), formatBytes(rate))
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
