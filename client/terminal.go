package client

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/term"
)

// makeRaw puts the local terminal fd in raw mode; r.restore puts it back.
func (r *runner) makeRaw(fd int) error {
	old, err := term.MakeRaw(fd)
	if err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	var once sync.Once
	r.restore = func() {
		once.Do(func() {
			_ = term.Restore(fd, old)
			r.raw.Store(false)
		})
	}
	r.raw.Store(true)
	return nil
}

// eol is the line ending for messages: "\r\n" while the terminal is raw.
func (r *runner) eol() string {
	if r.raw.Load() {
		return "\r\n"
	}
	return "\n"
}

// guard restores the terminal before a panic in a goroutine kills resh.
func (r *runner) guard() {
	if v := recover(); v != nil {
		if r.restore != nil {
			r.restore()
		}
		panic(v)
	}
}

// size returns the terminal's rows and columns, zero if unknown.
func (r *runner) size(fd int, isTerm bool) (rows, cols uint16) {
	if !isTerm {
		if f, ok := r.env.Stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			fd, isTerm = int(f.Fd()), true
		}
	}
	if !isTerm {
		return 0, 0
	}
	w, h, err := term.GetSize(fd)
	if err != nil || w <= 0 || h <= 0 || w > 65535 || h > 65535 {
		return 0, 0
	}
	return uint16(h), uint16(w)
}

// terminalFD returns the file descriptor of v when it is a terminal.
func terminalFD(v any) (int, bool) {
	f, ok := v.(*os.File)
	if !ok {
		return -1, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}
