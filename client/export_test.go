package client

import (
	"strings"
	"testing"
)

func TestRenamer(t *testing.T) {
	for in, want := range map[string]string{
		"resh: connection lost, reconnecting…\n":              "reshjob: connection lost, reconnecting…\n",
		"\rresh: waiting for a free executor (2 ahead)\x1b[K": "\rreshjob: waiting for a free executor (2 ahead)\x1b[K",
		"\r\x1b[K":                "\r\x1b[K",
		"a resh: inside\n":        "a resh: inside\n",
		"":                        "",
		"reshd: not the prefix\n": "reshd: not the prefix\n",
	} {
		var b strings.Builder
		n, err := renamer{w: &b, prefix: []byte("reshjob: ")}.Write([]byte(in))
		if n != len(in) || err != nil || b.String() != want {
			t.Errorf("Write(%q) = %d, %v, wrote %q; want %q", in, n, err, b.String(), want)
		}
	}
}
