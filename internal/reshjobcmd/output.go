package reshjobcmd

import (
	"errors"
	"io"
	"sync"
	"syscall"
)

// counter passes writes to its writer, counting the bytes written and
// remembering the last one. Its count is where an attach continues: the
// bytes of the job's output reshjob has written (from -from's offset),
// whatever session they came in.
type counter struct {
	mu   sync.Mutex
	w    io.Writer
	n    int64
	last byte
}

func (c *counter) Write(p []byte) (int, error) {
	c.mu.Lock()
	w := c.w
	c.mu.Unlock()
	n, err := w.Write(p)
	c.mu.Lock()
	c.n += int64(n)
	if n > 0 {
		c.last = p[n-1]
	}
	c.mu.Unlock()
	return n, err
}

// count is the offset reached.
func (c *counter) count() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// setWriter makes the next writes go to w.
func (c *counter) setWriter(w io.Writer) {
	c.mu.Lock()
	c.w = w
	c.mu.Unlock()
}

// unterminated reports that something was written and its last line has
// no newline.
func (c *counter) unterminated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last != 0 && c.last != '\n'
}

// copies are the copies of one session's stdout and stderr streams.
type copies struct {
	done   chan struct{} // closed when both have ended
	broken chan struct{} // closed when a local reader went away (EPIPE)
	once   sync.Once
}

// copyOutputs copies stdout to out and stderr to errOut, each until its
// end (the session's close ends both once what they hold is written).
// When a local reader goes away (EPIPE) the rest is discarded and broken
// is closed.
func copyOutputs(stdout, stderr io.Reader, out, errOut io.Writer) *copies {
	c := &copies{done: make(chan struct{}), broken: make(chan struct{})}
	var wg sync.WaitGroup
	for _, p := range []struct {
		w io.Writer
		r io.Reader
	}{{out, stdout}, {errOut, stderr}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := io.Copy(p.w, p.r)
			if err == nil {
				return
			}
			if errors.Is(err, syscall.EPIPE) {
				c.once.Do(func() { close(c.broken) })
			}
			_, _ = io.Copy(io.Discard, p.r)
		}()
	}
	go func() {
		wg.Wait()
		close(c.done)
	}()
	return c
}

// isBroken reports whether a local reader went away.
func (c *copies) isBroken() bool {
	select {
	case <-c.broken:
		return true
	default:
		return false
	}
}
