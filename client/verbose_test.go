package client

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestDebugfAndNotice(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{}, "notice\n"},
		{Options{Verbosity: 1}, "resh: one\nnotice\n"},
		{Options{Verbosity: 2}, "resh: one\nresh: two\nnotice\n"},
		{Options{Quiet: true}, ""},
	} {
		var b bytes.Buffer
		r := &runner{o: &c.o, stderr: &syncWriter{w: &b}}
		r.debugf(1, "one")
		r.debugf(2, "two")
		r.notice("notice")
		assert.Equal(t, c.want, b.String(), "%+v", c.o)
	}
	var b bytes.Buffer
	r := &runner{o: &Options{Verbosity: 1}, stderr: &syncWriter{w: &b}}
	r.raw.Store(true)
	r.debugf(1, "raw")
	assert.Equal(t, "resh: raw\r\n", b.String(), "CRLF while the terminal is raw")
}
