package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func parse(t *testing.T, args ...string) (code int, done bool, stdout, stderr string) {
	t.Helper()
	c := &Command{Name: "prog", Synopsis: "prog [-a] FILE...", Summary: "Does things."}
	fs := c.FlagSet()
	fs.Bool("a", false, "append to the files")
	var out, errb strings.Builder
	code, done = c.Parse(fs, args, &out, &errb)
	return code, done, out.String(), errb.String()
}

func TestHelp(t *testing.T) {
	for _, h := range []string{"-h", "--help", "-help"} {
		code, done, out, errb := parse(t, h)
		require.True(t, done, h)
		assert.Equal(t, 0, code, h)
		assert.Empty(t, errb, h)
		assert.Equal(t, "usage: prog [-a] FILE...\n\nDoes things.\n\nOptions:\n"+
			"  -a\tappend to the files\n"+
			"  --version\n    \tprint the version and the commit, then exit\n"+
			"  -h, --help\n    \tprint this help, then exit\n", out, h)
	}
}

func TestVersion(t *testing.T) {
	for _, v := range []string{"--version", "-version"} {
		code, done, out, errb := parse(t, v, "ignored")
		require.True(t, done, v)
		assert.Equal(t, 0, code, v)
		assert.Empty(t, errb, v)
		assert.Regexp(t, `^prog \S+ \(commit [^)]+\)\n$`, out, v)
	}
}

func TestBadUsage(t *testing.T) {
	code, done, out, errb := parse(t, "-z")
	require.True(t, done)
	assert.Equal(t, 2, code)
	assert.Empty(t, out)
	assert.Equal(t, "prog: flag provided but not defined: -z\nusage: prog [-a] FILE...\n", errb)
}

func TestNotDone(t *testing.T) {
	code, done, out, errb := parse(t, "-a", "f")
	assert.False(t, done)
	assert.Equal(t, 0, code)
	assert.Empty(t, out+errb)
}

func TestCell(t *testing.T) {
	if got := Cell(""); got != "-" {
		t.Errorf("Cell(\"\") = %q", got)
	}
	if got := Cell("a\tb\x1b[31m\n"); got != "a?b?[31m?" {
		t.Errorf("control characters: %q", got)
	}
}

func TestAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second: "0s", 0: "0s", 999 * time.Millisecond: "0s", 42 * time.Second: "42s",
		3*time.Minute + 12*time.Second + 900*time.Millisecond: "3m12s", time.Hour: "1h0m",
		2*time.Hour + 5*time.Minute + 59*time.Second: "2h5m", 76 * time.Hour: "3d4h",
	} {
		assert.Equal(t, want, Age(d), "Age(%v)", d)
	}
}
