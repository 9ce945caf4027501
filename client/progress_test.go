package client

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFormatBytes(t *testing.T) {
	for _, c := range []struct {
		n    float64
		want string
	}{{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {12.3 * (1 << 20), "12.3 MiB"}, {5 << 30, "5.0 GiB"}} {
		if got := formatBytes(c.n); got != c.want {
			t.Errorf("formatBytes(%v) = %q, want %q", c.n, got, c.want)
		}
	}
	if got := progressLine("lcat data.csv", 12897485, 270*time.Millisecond); got != "lcat data.csv: 12.3 MiB 45.6 MiB/s" {
		t.Errorf("progressLine = %q", got)
	}
}

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestProgressTiming(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	var buf bytes.Buffer
	p := &lineProgress{mu: &sync.Mutex{}, w: &buf, now: clock.now, eol: func() string { return "\n" }}

	// A transfer shorter than a second shows nothing.
	m := p.Start("lcat", "small")
	clock.t = clock.t.Add(500 * time.Millisecond)
	m.Update(100)
	m.Done()
	if buf.Len() != 0 {
		t.Fatalf("short transfer drew %q", buf.String())
	}

	// A long one: drawn after a second, at most every 250ms, ended by a newline.
	m = p.Start("ltee", "big")
	draws := 0
	for i := 1; i <= 40; i++ { // 4 s in 100 ms steps
		clock.t = clock.t.Add(100 * time.Millisecond)
		m.Update(int64(i) << 20)
		draws = strings.Count(buf.String(), "\r")
	}
	if draws < 8 || draws > 13 {
		t.Fatalf("%d draws over 3 s after the first second, want about 4 a second:\n%q", draws, buf.String())
	}
	m.Done()
	out := buf.String()
	if !strings.HasSuffix(out, "\rltee big: 40.0 MiB 10.0 MiB/s\x1b[K\n") {
		t.Fatalf("final line: %q", out[strings.LastIndex(out[:len(out)-1], "\r"):])
	}
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("want exactly one newline, got %q", out)
	}
}
