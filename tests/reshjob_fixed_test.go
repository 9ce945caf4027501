package tests

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// A language an executor advertises runs: its tools are looked up in the
// sandbox's PATH, where the job finds them (here chroot, in /usr/sbin).
func TestReshjobAdvertisedToolRunsInSandbox(t *testing.T) {
	skipWithout(t, "bwrap", "chroot")
	p, _ := exec.LookPath("chroot")
	if dir := filepath.Dir(p); dir == "/usr/bin" || dir == "/bin" {
		t.Skipf("chroot is in %s, in the sandbox's PATH", dir)
	}
	m := startMaster(t, nil)
	startExecutorWithLanguages(t, m, "sbin", "[chrootv]\nsource = main.txt\nrun = chroot --version\n")
	r := submitJob(t, m, nil, "-lang", "chrootv", writeProgram(t, "x.txt", "unused\n"))
	assert.Equal(t, 0, r.code, "stderr %q", r.stderr)
	assert.True(t, strings.HasPrefix(r.stdout, "chroot (GNU coreutils)"), "stdout %q", r.stdout)
}

// The verdict's line is a line of its own on stderr, even after output
// that does not end with a newline (a program's last words, or output cut
// at its limit).
func TestReshjobVerdictOnItsOwnLine(t *testing.T) {
	d := startJobReshd(t)
	r := submitJob(t, d, nil, writeProgram(t, "oops.py", "import sys\nsys.stderr.write('oops')\nsys.exit(1)\n"))
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "oops\n"+verdictLine("RUNTIME_ERROR", "exit status 1"), r.stderr)
	r = submitJob(t, d, nil, "-output", "64K", writeProgram(t, "loud.sh", "while :; do echo noise >&2; done\n"))
	assert.Equal(t, 122, r.code)
	_, last := splitLastLine(r.stderr)
	assert.Equal(t, verdictLine("OUTPUT_LIMIT", "stderr beyond 64 KiB"), last)
}
