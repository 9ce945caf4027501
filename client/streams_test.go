package client

import (
	"bytes"
	"io"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"

	"resh/proto"
)

// brokenWriter is an output whose reader went away.
type brokenWriter struct{}

func (brokenWriter) Write([]byte) (int, error) { return 0, syscall.EPIPE }

func TestCopyOut(t *testing.T) {
	ctl := &lockedBuffer{}
	r := &runner{o: &Options{}, control: ctl}
	var out bytes.Buffer
	assert.False(t, r.copyOut(&out, strings.NewReader("data"), proto.KindStdout))
	assert.Equal(t, "data", out.String())
	assert.Empty(t, ctl.messages(t))

	src := strings.NewReader("lost data")
	assert.True(t, r.copyOut(brokenWriter{}, src, proto.KindStderr), "a broken output is reported")
	assert.Equal(t, []proto.Type{proto.TypeOutputClosed}, ctl.messages(t))
	assert.Zero(t, src.Len(), "the rest is drained")
}

// stdinStream records what copyStdin sends and whether it closed.
type stdinStream struct {
	bytes.Buffer
	closed bool
}

func (s *stdinStream) Close() error { s.closed = true; return nil }

func TestCopyStdin(t *testing.T) {
	// Not a terminal: copied as is, closed at EOF.
	r := &runner{o: &Options{}, env: Env{Stdin: strings.NewReader("a\n~.b")}, stderr: &syncWriter{w: io.Discard}}
	var st stdinStream
	escaped := make(chan struct{})
	r.copyStdin(&st, false, escaped)
	assert.Equal(t, "a\n~.b", st.String())
	assert.True(t, st.closed)

	// A terminal: ~? prints the escapes on stderr, ~. ends, no close.
	var stderr bytes.Buffer
	r = &runner{o: &Options{}, env: Env{Stdin: strings.NewReader("ls\r~?pwd\r~.after")}, stderr: &syncWriter{w: &stderr}}
	st = stdinStream{}
	r.copyStdin(&st, true, escaped)
	assert.Equal(t, "ls\rpwd\r", st.String())
	assert.False(t, st.closed)
	assert.Contains(t, stderr.String(), "Supported escape sequences:")
	select {
	case <-escaped:
	default:
		t.Error("~. did not end the session")
	}
}
