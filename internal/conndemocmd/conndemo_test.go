package conndemocmd

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDemoSmall(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 0, Run([]string{"-size", "512KiB", "-drop-after", "200KiB"}, &out, &errb), errb.String())
	assert.Contains(t, out.String(), "received intact")
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-size", "lots"}, {"-corrupt", "2"}, {"extra"}, {"-nope"}} {
		var out, errb bytes.Buffer
		assert.Equal(t, 2, Run(args, &out, &errb), args)
		assert.True(t, strings.HasPrefix(errb.String(), "conndemo: "), errb.String())
		assert.True(t, strings.HasSuffix(errb.String(), "\nusage: "+command.Synopsis+"\n"), errb.String())
	}
}

func TestHelpAndVersion(t *testing.T) {
	var out, errb bytes.Buffer
	assert.Equal(t, 0, Run([]string{"-h"}, &out, &errb))
	assert.Contains(t, out.String(), "  -drop-after string\n")
	out.Reset()
	assert.Equal(t, 0, Run([]string{"--version"}, &out, &errb))
	assert.Regexp(t, `^conndemo \S+ \(commit [^)]+\)\n$`, out.String())
	assert.Empty(t, errb.String())
}
