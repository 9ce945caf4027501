package client

import (
	"fmt"
	"io"
	"sync"
)

// debugf prints one line "resh: ..." on stderr with -v given at least
// level times: connection events and timings.
func (r *runner) debugf(level int, format string, args ...any) {
	if r.o.Verbosity < level {
		return
	}
	r.stderr.printf("resh: "+format+"%s", append(args, r.eol())...)
}

// notice prints one line on stderr unless -q.
func (r *runner) notice(format string, args ...any) {
	if r.o.Quiet {
		return
	}
	r.stderr.printf(format+"%s", append(args, r.eol())...)
}

// syncWriter serialises writes to stderr, shared by the command's stderr,
// progress lines and notices.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, format, args...)
}
