package client

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSentEnv(t *testing.T) {
	got := sentEnv([]string{"TERM=xterm", "LANG=C.UTF-8", "LC_ALL=C", "HOME=/root", "PATH=/bin", "LCX=no", "broken"})
	assert.Equal(t, map[string]string{"TERM": "xterm", "LANG": "C.UTF-8", "LC_ALL": "C"}, got)
}
