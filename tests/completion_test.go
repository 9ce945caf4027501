package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// completionHome makes a HOME with a known_hosts in ~/.resh (ports 4200 and
// 4300, IPv6, a hashed name) and a ~/.ssh/config with aliases and a
// pattern.
func completionHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".resh"), 0o700))
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".ssh"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(home, ".resh", "known_hosts"), []byte(
		"[localhost]:4200 ssh-ed25519 AAAA\n[::1]:4200 ssh-ed25519 AAAA\n[box]:4300 ssh-ed25519 AAAA\n|1|aGFzaA==|aGFzaA== ssh-ed25519 AAAA\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(
		"Host alpha beta *.corp\n  HostName a.example\nhost gamma\n"), 0o600))
	return home
}

// wantHosts are the hosts completionHome's files name.
var wantHosts = []string{"localhost", "[::1]", "box:4300", "alpha", "beta", "gamma"}

// assertFlagsMatchHelp checks that the options a completion offers are the
// options resh -h describes (an option the -h text mentions otherwise,
// as -tt in -t's description, is fine too).
func assertFlagsMatchHelp(t *testing.T, offered []string) {
	t.Helper()
	code, help, _ := runBinary(t, "resh", "-h")
	require.Equal(t, 0, code)
	described := helpFlags(help)
	assert.Empty(t, missing(described, offered), "options of resh -h the completion does not offer")
	for _, o := range missing(offered, described) {
		assert.Regexp(t, `(^|\s)-`+regexp.QuoteMeta(o)+`\b`, help, "the completion offers -%s, which resh -h does not mention", o)
	}
}

// The bash completion parses, offers the options of resh -h, their
// values, and the hosts of known_hosts and ~/.ssh/config, USER@ kept.
func TestCompletionBash(t *testing.T) {
	script, err := filepath.Abs("../completion/resh.bash")
	require.NoError(t, err)
	out, err := exec.Command("bash", "-n", script).CombinedOutput()
	require.NoError(t, err, "bash -n: %s", out)

	src, err := os.ReadFile(script)
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^_resh_opts='([^']*)'$`).FindStringSubmatch(string(src))
	require.NotNil(t, m, "resh.bash sets _resh_opts")
	assertFlagsMatchHelp(t, optionNames(m[1]))

	home := completionHome(t)
	complete := func(words ...string) []string {
		t.Helper()
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + w + "'"
		}
		cmd := exec.Command("bash", "--norc", "--noprofile", "-c", `source "$1"; COMP_WORDS=(`+strings.Join(quoted, " ")+
			`); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _resh; printf '%s\n' "${COMPREPLY[@]}"`, "bash", script)
		cmd.Env = append(os.Environ(), "HOME="+home, "RESH_HOME=")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		return strings.Fields(string(out))
	}
	assert.Equal(t, []string{"-known-only"}, complete("resh", "-kn"))
	assert.ElementsMatch(t, []string{"-no-files", "-n"}, complete("resh", "-n"))
	assert.ElementsMatch(t, wantHosts, complete("resh", ""))
	assert.ElementsMatch(t, wantHosts, complete("resh", "-p", "4300", ""), "after an option's value")
	assert.Equal(t, []string{"root@alpha"}, complete("resh", "root@al"))
	assert.Equal(t, []string{"StrictHostKeyChecking="}, complete("resh", "-o", "Stri"))
	assert.Contains(t, complete("resh", "host", "-v", "unam"), "uname", "the command after HOST and options")
}

// The zsh completion parses (where zsh is installed), offers the options
// of resh -h and finds the same hosts.
func TestCompletionZsh(t *testing.T) {
	if _, err := exec.LookPath("zsh"); err != nil {
		t.Skip("zsh is not installed (.ci/run installs it)")
	}
	script, err := filepath.Abs("../completion/_resh")
	require.NoError(t, err)
	out, err := exec.Command("zsh", "-n", script).CombinedOutput()
	require.NoError(t, err, "zsh -n: %s", out)

	src, err := os.ReadFile(script)
	require.NoError(t, err)
	var offered []string
	spec := regexp.MustCompile(`(?m)^\s+'(?:\([^)]*\))?\*?(-[A-Za-z0-9-]+)\[|^\s+'\([^)]*\)'\{(-[A-Za-z0-9-]+),(-[A-Za-z0-9-]+)\}'\[`)
	for _, m := range spec.FindAllStringSubmatch(string(src), -1) {
		offered = append(offered, optionNames(strings.Join(m[1:], " "))...)
	}
	assertFlagsMatchHelp(t, uniq(offered))

	cmd := exec.Command("zsh", "-f", "-c", `source "$1"; _resh_host_list; print -l -- $reply`, "zsh", script)
	cmd.Env = append(os.Environ(), "HOME="+completionHome(t), "RESH_HOME=")
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.ElementsMatch(t, wantHosts, strings.Fields(string(out)))
}
