package tests

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runReshjob runs reshjob against d with args after HOST and stdin, and
// returns its exit status, stdout and stderr. It uses the tests' RESH_HOME,
// whose known_hosts resh filled at first contact: with TLS it passes
// -known-only, so the run shows that reshjob pins hosts as resh does.
func runReshjob(t *testing.T, d *daemon, stdin string, args ...string) (int, string, string) {
	t.Helper()
	host, port, err := net.SplitHostPort(d.addr)
	require.NoError(t, err)
	all := []string{"-p", port}
	if d.insecure {
		all = append(all, "-insecure")
	} else {
		all = append(all, "-known-only")
	}
	all = append(append(all, host), args...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "reshjob"), all...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	require.NoError(t, ctx.Err(), "reshjob %q did not end", all)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), out.String(), errb.String()
	}
	require.NoError(t, err)
	return 0, out.String(), errb.String()
}

const helloC = `#include <stdio.h>
int main(int argc, char **argv) {
	char line[64];
	if (!fgets(line, sizeof line, stdin)) return 2;
	printf("hello %s, args %s %s, from C\n", strtok(line, "\n"), argv[1], argv[2]);
	fprintf(stderr, "to stderr\n");
	return 0;
}
`

const helloPy = `import sys
name = sys.stdin.readline().strip()
print("hello %s, args %s %s, from Python" % (name, sys.argv[1], sys.argv[2]))
print("to stderr", file=sys.stderr)
`

// reshjob run against a real reshd: hello world in C and Python with
// stdin and arguments, the output and the exit status as if run here, a
// runtime error's status and line, -json's object.
func TestReshjobHello(t *testing.T) {
	for _, tool := range []string{"gcc", "python3", "bwrap"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	d := startReshd(t)
	dir := t.TempDir()
	write := func(name, src string) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(src), 0o644))
		return path
	}
	for _, c := range []struct{ file, src, lang string }{
		{"hello.c", "#include <string.h>\n" + helloC, "C"},
		{"hello.py", helloPy, "Python"},
	} {
		t.Run(c.file, func(t *testing.T) {
			code, stdout, stderr := runReshjob(t, d, "world\n", "run", write(c.file, c.src), "a", "-b")
			if code == 125 {
				t.Skipf("the executor cannot build the sandbox here: %s", stderr)
			}
			assert.Equal(t, 0, code, "stderr %q", stderr)
			assert.Equal(t, "hello world, args a -b, from "+c.lang+"\n", stdout)
			assert.Equal(t, "to stderr\n", stderr)
		})
	}
	t.Run("runtime error", func(t *testing.T) {
		code, stdout, stderr := runReshjob(t, d, "", "run", "-lang", "python", "-", "x")
		if code == 125 {
			t.Skipf("the executor cannot build the sandbox here: %s", stderr)
		}
		// "-" with no program at all: python runs nothing and exits 0.
		assert.Equal(t, 0, code, "stderr %q", stderr)
		assert.Empty(t, stdout+stderr)
		code, stdout, stderr = runReshjob(t, d, "", "run", "-json", write("exit3.py", "print('bye')\nraise SystemExit(3)\n"))
		assert.Equal(t, 3, code)
		assert.Equal(t, "reshjob: RUNTIME_ERROR (", stderr[:min(len(stderr), len("reshjob: RUNTIME_ERROR ("))], "stderr %q", stderr)
		out, obj, ok := strings.Cut(stdout, "\n")
		require.True(t, ok, "stdout %q", stdout)
		assert.Equal(t, "bye", out)
		var r struct {
			Verdict  string `json:"verdict"`
			Status   int    `json:"status"`
			Stdout   int64  `json:"stdout"`
			Executor string `json:"executor"`
			Exit     int    `json:"exit"`
		}
		require.NoError(t, json.Unmarshal([]byte(obj), &r), "%q", obj)
		assert.Equal(t, "RUNTIME_ERROR", r.Verdict)
		assert.Equal(t, 3, r.Status)
		assert.Equal(t, 3, r.Exit)
		assert.EqualValues(t, 4, r.Stdout)
		assert.NotEmpty(t, r.Executor)
	})
}

// reshjob follows the programs' conventions (-h, --version, bad usage),
// and man/reshjob.1 documents in OPTIONS the options of reshjob -h and of
// each command's -h (reshjob HOST run -h, ...), and renders without
// warnings.
func TestReshjobHelpAndManPage(t *testing.T) {
	for _, h := range []string{"-h", "--help"} {
		code, out, errb := runBinary(t, "reshjob", h)
		assert.Equal(t, 0, code)
		assert.Empty(t, errb)
		assert.True(t, strings.HasPrefix(out, "usage: reshjob"), "%q", out)
	}
	code, out, errb := runBinary(t, "reshjob", "--version")
	assert.Equal(t, 0, code)
	assert.Empty(t, errb)
	assert.Regexp(t, `^reshjob \d+\.\d+\.\d+\S* \(commit [^)]+\)\n$`, out)
	for _, args := range [][]string{{"-Z"}, {"host", "lst"}, {"host", "run", "-Z", "a.py"}, {"host", "attach"}, {"host", "ls", "-state", "x"}} {
		code, out, errb = runBinary(t, "reshjob", args...)
		assert.Equal(t, 2, code, "%q", args)
		assert.Empty(t, out)
		lines := strings.Split(strings.TrimSuffix(errb, "\n"), "\n")
		require.GreaterOrEqual(t, len(lines), 2, "%q", errb)
		assert.True(t, strings.HasPrefix(lines[0], "reshjob: "), "%q", lines[0])
		assert.True(t, strings.HasPrefix(lines[1], "usage: reshjob"), "%q", lines[1])
	}

	page, err := os.ReadFile(filepath.Join("..", "man", "reshjob.1"))
	require.NoError(t, err)
	documented := manOptions(t, string(page))
	_, top, _ := runBinary(t, "reshjob", "-h")
	described := helpFlags(top)
	for _, command := range []string{"run", "submit", "attach", "ls", "status", "cancel"} {
		_, sub, _ := runBinary(t, "reshjob", "host", command, "-h")
		described = append(described, helpFlags(sub)...)
	}
	described = uniq(described)
	assert.Empty(t, missing(described, documented), "options of reshjob -h missing from man/reshjob.1's OPTIONS")
	assert.Empty(t, missing(documented, described), "options in man/reshjob.1 that reshjob -h does not describe")
	for _, sec := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "SEE ALSO"} {
		assert.Contains(t, string(page), "\n.SH "+sec+"\n")
	}
	for _, code := range []string{"119", "120"} {
		assert.Contains(t, string(page), "\n.B "+code+"\n", "exit status %s documented", code)
	}
	if _, err := exec.LookPath("man"); err != nil {
		return
	}
	cmd := exec.Command("man", "--warnings", "-l", filepath.Join("..", "man", "reshjob.1"))
	cmd.Env = append(os.Environ(), "MANWIDTH=80", "MANPAGER=cat", "PAGER=cat")
	var mout, merr strings.Builder
	cmd.Stdout, cmd.Stderr = &mout, &merr
	if err := cmd.Run(); err != nil && strings.Contains(merr.String(), "can't execute") {
		return
	}
	assert.Empty(t, merr.String(), "man reshjob.1 warns")
	assert.Contains(t, mout.String(), "RESHJOB(1)")
}

// Through a master, the program runs on an executor that has its
// language; a language no executor has is refused with a clear error.
func TestReshjobThroughMaster(t *testing.T) {
	for _, tool := range []string{"python3", "bwrap"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	m := startMaster(t, []string{"-local", "1"}, "local-1")
	path := filepath.Join(t.TempDir(), "hello.py")
	require.NoError(t, os.WriteFile(path, []byte(helloPy), 0o644))
	code, stdout, stderr := runReshjob(t, m, "master\n", "run", "-json", path, "a", "b")
	if code == 125 {
		t.Skipf("the executor cannot build the sandbox here: %s", stderr)
	}
	assert.Equal(t, 0, code, "stderr %q", stderr)
	assert.Equal(t, "to stderr\n", stderr)
	out, obj, _ := strings.Cut(stdout, "\n")
	assert.Equal(t, "hello master, args a b, from Python", out)
	var r struct {
		Verdict, Executor string
	}
	require.NoError(t, json.Unmarshal([]byte(obj), &r), "%q", obj)
	assert.Equal(t, "OK", r.Verdict)
	assert.Equal(t, "local-1", r.Executor)

	code, stdout, stderr = runReshjob(t, m, "", "run", "-lang", "cobol", path)
	assert.Equal(t, 255, code)
	assert.Empty(t, stdout)
	// One line naming the language (the master's words).
	assert.Regexp(t, `^reshjob: [^\n]*cobol[^\n]*\n$`, stderr)
}
