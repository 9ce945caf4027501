package lang

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakePath makes dir/name for each name, a shell script with that body,
// and sets PATH to dir alone for the test.
func fakePath(t *testing.T, scripts map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range scripts {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755))
	}
	t.Setenv("PATH", dir)
	return dir
}

func TestDetect(t *testing.T) {
	dir := fakePath(t, map[string]string{
		"gcc":     `echo; echo "gcc (Fake 1) 9.9.9"; echo "Copyright"`,
		"javac":   `echo "javac 99"`, // no java: no java
		"python3": `echo "Python 3.99.0" >&2`,
		"sh":      `exit 0`,
		"node":    `exit 3`,
	})
	s, err := Parse(strings.NewReader("[node]\nextensions = .js\nrun = node {source}\nversion = node --version\n"), "languages", nil)
	require.NoError(t, err)

	found := s.Detect(context.Background())
	var names []string
	byName := map[string]Detected{}
	for _, d := range found {
		names = append(names, d.Language.Name)
		byName[d.Language.Name] = d
	}
	assert.Equal(t, []string{"c", "node", "python", "sh"}, names, "no g++, no java")

	assert.Equal(t, "gcc (Fake 1) 9.9.9", byName["c"].Version, "the first non-empty line")
	assert.Equal(t, []string{filepath.Join(dir, "gcc")}, byName["c"].Tools)
	assert.Equal(t, "Python 3.99.0", byName["python"].Version, "stderr when stdout is empty")
	assert.Equal(t, "", byName["sh"].Version, "sh has no version command")
	assert.NoError(t, byName["sh"].VersionErr)
	assert.Equal(t, "", byName["node"].Version)
	assert.Error(t, byName["node"].VersionErr, "a failing version command leaves the language, without a version")
}

func TestDetectVersionTimeout(t *testing.T) {
	defer func(d time.Duration) { versionTimeout = d }(versionTimeout)
	versionTimeout = 200 * time.Millisecond
	fakePath(t, map[string]string{
		"slow1": `exec /bin/sleep 30`,
		"slow2": `exec /bin/sleep 30`,
		"fast":  `echo fast 1.0`,
	})
	s, err := Parse(strings.NewReader(`
[slow1]
source = a
run = slow1
version = slow1 --version
[slow2]
source = a
run = slow2
version = slow2 --version
[fast]
source = a
run = fast {source}
version = fast -v
`), "languages", newSet(nil))
	require.NoError(t, err)

	start := time.Now()
	found := s.Detect(context.Background())
	assert.Less(t, time.Since(start), 5*time.Second, "the version commands are bounded and run together")
	require.Len(t, found, 3)
	assert.Equal(t, "fast", found[0].Language.Name)
	assert.Equal(t, "fast 1.0", found[0].Version)
	for _, d := range found[1:] {
		assert.Equal(t, "", d.Version, d.Language.Name)
		assert.Error(t, d.VersionErr, d.Language.Name)
	}
}

func TestDetectCanceled(t *testing.T) {
	fakePath(t, map[string]string{"gcc": `echo gcc 1`})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	found := Builtin().Detect(ctx)
	require.Len(t, found, 1, "the tools are there")
	assert.Equal(t, "c", found[0].Language.Name)
	assert.Error(t, found[0].VersionErr)
}

func TestDetectHere(t *testing.T) {
	// This machine has sh; whatever else it has, Detect agrees with
	// Tools and LookPath.
	found := Builtin().Detect(context.Background())
	var names []string
	for _, d := range found {
		names = append(names, d.Language.Name)
		assert.Len(t, d.Tools, len(d.Language.Tools()), d.Language.Name)
	}
	assert.Contains(t, names, "sh")
}

func TestFirstLine(t *testing.T) {
	assert.Equal(t, "", firstLine(""))
	assert.Equal(t, "", firstLine(" \n\t\n"))
	assert.Equal(t, "a b", firstLine("\n  a b  \r\nc"))
	assert.Len(t, firstLine(strings.Repeat("x", 1000)), 200)
}

func TestToolsIn(t *testing.T) {
	dir := fakePath(t, map[string]string{"gcc": "exit 0", "javac": "exit 0", "python3": "exit 0"})
	set := Builtin()
	c, _ := set.ByName("c")
	java, _ := set.ByName("java")
	assert.True(t, c.ToolsIn(dir), "gcc compiles and the program runs by itself")
	assert.False(t, java.ToolsIn(dir), "javac without java")
	assert.False(t, c.ToolsIn(t.TempDir()))
	assert.Equal(t, []string{"c", "python"}, set.NamesIn(dir))
}
