package client

import (
	"os"
	"strings"
	"testing"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/term"
)

func TestTerminal(t *testing.T) {
	_, ok := terminalFD(strings.NewReader(""))
	assert.False(t, ok, "a reader is no terminal")
	ptmx, tty, err := pty.Open()
	require.NoError(t, err)
	defer ptmx.Close()
	defer tty.Close()
	require.NoError(t, pty.Setsize(ptmx, &pty.Winsize{Rows: 33, Cols: 99}))
	fd, ok := terminalFD(tty)
	require.True(t, ok)

	r := &runner{o: &Options{}, env: Env{Stdout: os.Stdout}}
	rows, cols := r.size(fd, true)
	assert.Equal(t, [2]uint16{33, 99}, [2]uint16{rows, cols})

	require.NoError(t, r.makeRaw(fd))
	assert.Equal(t, "\r\n", r.eol())
	r.restore()
	r.restore() // twice is fine
	assert.Equal(t, "\n", r.eol())
	_, err = term.GetState(fd)
	require.NoError(t, err)
}
