package client

import "testing"

func TestEscaper(t *testing.T) {
	for _, c := range []struct {
		name   string
		chunks []string
		out    string
		quit   bool
	}{
		{"plain", []string{"ls -l\r"}, "ls -l\r", false},
		{"quit at start", []string{"~."}, "", true},
		{"quit after newline", []string{"echo\r~.rest"}, "echo\r", true},
		{"quit after LF", []string{"a\n~."}, "a\n", true},
		{"quit split across reads", []string{"x\r", "~", "."}, "x\r", true},
		{"tilde mid-line", []string{"a~.b"}, "a~.b", false},
		{"double tilde", []string{"~~."}, "~.", false},
		{"tilde then other", []string{"~x"}, "~x", false},
		{"tilde then newline then quit", []string{"~\r~."}, "~\r", true},
		{"control chars pass", []string{"\x03\x04~\x03"}, "\x03\x04~\x03", false},
		{"held tilde then double", []string{"~", "~", "~."}, "~~.", false},
	} {
		var e escaper
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
		if string(out) != c.out || quit != c.quit {
			t.Errorf("%s: forwarded %q quit=%v, want %q quit=%v", c.name, out, quit, c.out, c.quit)
		}
	}
}
