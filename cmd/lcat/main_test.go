package main

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func runArgs(args ...string) (code int, stdout, stderr string) {
	var out, errb strings.Builder
	code = run(context.Background(), args, "", strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestBadFlags(t *testing.T) {
	code, out, errb := runArgs("-z")
	assert.Equal(t, 2, code)
	assert.Empty(t, out)
	assert.Equal(t, "lcat: flag provided but not defined: -z\nusage: "+command.Synopsis+"\n", errb)
}

func TestHelp(t *testing.T) {
	for _, h := range []string{"-h", "--help"} {
		code, out, errb := runArgs(h)
		assert.Equal(t, 0, code, h)
		assert.Empty(t, errb, h)
		assert.True(t, strings.HasPrefix(out, "usage: "+command.Synopsis+"\n"), out)
		assert.Contains(t, out, "--version\n", h)
	}
}

func TestVersion(t *testing.T) {
	code, out, errb := runArgs("--version")
	assert.Equal(t, 0, code)
	assert.Empty(t, errb)
	assert.Regexp(t, `^lcat \S+ \(commit [^)]+\)\n$`, out)
}

func TestOutsideSession(t *testing.T) {
	code, out, errb := runArgs("f")
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	assert.Equal(t, "lcat: not inside a resh session (RESH_SOCKET is not set)\n", errb)
}
