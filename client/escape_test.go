package client

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestEscaper(t *testing.T) {
	for _, c := range []struct {
		name   string
		chunks []string
		out    string
		quit   bool
		helps  int
	}{
		{"plain", []string{"ls -l\r"}, "ls -l\r", false, 0},
		{"quit at start", []string{"~."}, "", true, 0},
		{"quit after newline", []string{"echo\r~.rest"}, "echo\r", true, 0},
		{"quit after LF", []string{"a\n~."}, "a\n", true, 0},
		{"quit split across reads", []string{"x\r", "~", "."}, "x\r", true, 0},
		{"tilde mid-line", []string{"a~.b"}, "a~.b", false, 0},
		{"double tilde", []string{"~~."}, "~.", false, 0},
		{"tilde then other", []string{"~x"}, "~x", false, 0},
		{"tilde then newline then quit", []string{"~\r~."}, "~\r", true, 0},
		{"control chars pass", []string{"\x03\x04~\x03"}, "\x03\x04~\x03", false, 0},
		{"held tilde then double", []string{"~", "~", "~."}, "~~.", false, 0},
		{"help, not sent", []string{"~?"}, "", false, 1},
		{"help after newline, then typing", []string{"ls\r~?pwd\r"}, "ls\rpwd\r", false, 1},
		{"help then quit", []string{"~?", "~."}, "", true, 1},
		{"help split across reads", []string{"~", "?"}, "", false, 1},
		{"question mark mid-line", []string{"a~?"}, "a~?", false, 0},
	} {
		helps := 0
		e := escaper{help: func() { helps++ }}
		var out []byte
		quit := false
		for _, ch := range c.chunks {
			o, q := e.feed([]byte(ch))
			out = append(out, o...)
			if q {
				quit = true
				break
			}
		}
		assert.Equal(t, c.out, string(out), c.name)
		assert.Equal(t, c.quit, quit, c.name)
		assert.Equal(t, c.helps, helps, c.name)
	}
}

func TestEscapeHelp(t *testing.T) {
	h := escapeHelp("\r\n")
	for _, want := range []string{" ~.   - terminate connection\r\n", " ~?   - this message\r\n", " ~~   - send the escape character by typing it twice\r\n"} {
		assert.Contains(t, h, want)
	}
}
