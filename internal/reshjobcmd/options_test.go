package reshjobcmd

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"resh/client"
	"resh/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseRun(t *testing.T) {
	var stdout, stderr strings.Builder
	o, code, done := Parse([]string{"-p", "4300", "-i", "key", "-known-only", "host", "run", "-time", "2s", "-cpu", "500ms",
		"-mem", "64M", "-procs", "4", "-output", "1K", "-json", "prog.cc", "a", "-b", "--c"}, &stdout, &stderr)
	if done || code != 0 || stdout.Len()+stderr.Len() != 0 {
		t.Fatalf("Parse: code %d done %v, stdout %q stderr %q", code, done, stdout.String(), stderr.String())
	}
	c := o.Client
	if c.Host != "host" || c.Port != 4300 || c.Identity != "key" || !c.KnownOnly || c.Insecure || o.Command != "run" {
		t.Errorf("client options %+v, command %q", c, o.Command)
	}
	want := proto.JobLimits{WallMS: 2000, CPUMS: 500, Memory: 64 << 20, Procs: 4, Output: 1024}
	r := o.Run
	if r.Lang != "c++" || r.File != "prog.cc" || strings.Join(r.Args, " ") != "a -b --c" || r.Limits != want || !r.JSON {
		t.Errorf("run options %+v, want limits %+v", r, want)
	}
}

func TestParseDefaults(t *testing.T) {
	var out strings.Builder
	o, _, done := Parse([]string{"[::1]", "run", "-lang", "python", "-"}, &out, &out)
	if done {
		t.Fatalf("Parse said done: %s", out.String())
	}
	if o.Client.Host != "::1" || o.Client.Port != 4200 || o.Run.Lang != "python" || !o.Run.Stdin() || o.Run.Limits != (proto.JobLimits{}) {
		t.Errorf("options %+v", o)
	}
}

func TestParseBadUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{nil, "no HOST given"},
		{[]string{"host"}, "no COMMAND given after HOST: one of run, submit, attach, ls, status, cancel"},
		{[]string{"host", "sub", "x.py"}, `unknown command "sub": reshjob knows run, submit, attach, ls, status, cancel`},
		{[]string{"-give-up", "0s", "host", "ls"}, "-give-up must be a positive duration such as 30s or 5m"},
		{[]string{"host", "submit"}, "submit needs the program's FILE (or - with -lang)"},
		{[]string{"host", "submit", "-json", "a.py"}, "flag provided but not defined: -json"},
		{[]string{"host", "attach"}, "no job ID given"},
		{[]string{"host", "attach", "1", "2"}, "one job ID only, not 1 2"},
		{[]string{"host", "attach", "x"}, `"x" is not a job ID (a positive number)`},
		{[]string{"host", "attach", "0"}, `"0" is not a job ID (a positive number)`},
		{[]string{"host", "attach", "-from", "a", "1"}, `-from: "a" is not N or N:M (byte offsets of stdout and stderr)`},
		{[]string{"host", "attach", "-from", "1:-2", "1"}, `-from: "1:-2" is not N or N:M (byte offsets of stdout and stderr)`},
		{[]string{"host", "ls", "x"}, `ls takes no operand, not "x"`},
		{[]string{"host", "ls", "-state", "done"}, `-state: "done" is not a state: one of queued, running, finished, cancelled, failed`},
		{[]string{"host", "status"}, "no job ID given"},
		{[]string{"host", "status", "-1"}, "flag provided but not defined: -1"},
		{[]string{"host", "cancel", "-json", "3"}, "flag provided but not defined: -json"},
		{[]string{"-x", "host", "run", "a.py"}, "flag provided but not defined: -x"},
		{[]string{"-p", "0", "host", "run", "a.py"}, "-p: 0 is not a port (1 to 65535)"},
		{[]string{"-p", "70000", "host", "run", "a.py"}, "-p: 70000 is not a port (1 to 65535)"},
		{[]string{"-p", "x", "host", "run", "a.py"}, `invalid value "x" for flag -p: parse error`},
		{[]string{"-insecure", "-i", "k", "host", "run", "a.py"}, "-insecure excludes -i and -known-only"},
		{[]string{"-insecure", "-known-only", "host", "run", "a.py"}, "-insecure excludes -i and -known-only"},
		{[]string{"", "run", "a.py"}, "empty HOST"},
		{[]string{"host", "run"}, "run needs the program's FILE (or - with -lang)"},
		{[]string{"host", "run", "-json"}, "run needs the program's FILE (or - with -lang)"},
		{[]string{"host", "run", "-"}, "- reads the program from stdin: give its language with -lang"},
		{[]string{"host", "run", "prog"}, "cannot tell the language of prog from its extension: give -lang (c, c++, java, python, sh)"},
		{[]string{"host", "run", "prog.rs"}, "cannot tell the language of prog.rs from its extension: give -lang (c, c++, java, python, sh)"},
		{[]string{"host", "run", "-y", "a.py"}, "flag provided but not defined: -y"},
		{[]string{"host", "run", "-time", "soon", "a.py"}, `-time must be a positive duration such as 10s or 2m, not "soon"`},
		{[]string{"host", "run", "-time", "-1s", "a.py"}, `-time must be a positive duration such as 10s or 2m, not "-1s"`},
		{[]string{"host", "run", "-time", "10us", "a.py"}, `-time must be at least 1ms, not "10us"`},
		{[]string{"host", "run", "-cpu", "0", "a.py"}, `-cpu must be a positive duration such as 10s or 2m, not "0"`},
		{[]string{"host", "run", "-mem", "lots", "a.py"}, `-mem: want a positive size such as 512M, 1G, 64K or a number of bytes, not "lots"`},
		{[]string{"host", "run", "-output", "0", "a.py"}, `-output: want a positive size such as 512M, 1G, 64K or a number of bytes, not "0"`},
		{[]string{"host", "run", "-procs", "0", "a.py"}, `-procs must be a positive number, not "0"`},
		{[]string{"host", "run", "-procs", "many", "a.py"}, `-procs must be a positive number, not "many"`},
		{[]string{"host", "run", "-lang"}, "flag needs an argument: -lang"},
	} {
		var stdout, stderr strings.Builder
		_, code, done := Parse(c.args, &stdout, &stderr)
		lines := strings.Split(stderr.String(), "\n")
		if !done || code != 2 || stdout.Len() != 0 || len(lines) < 2 || lines[0] != "reshjob: "+c.msg || !strings.HasPrefix(lines[1], "usage: reshjob ") {
			t.Errorf("%q: code %d done %v stdout %q stderr %q; want 2 and %q", c.args, code, done, stdout.String(), stderr.String(), c.msg)
		}
	}
}

func TestParseHelpVersion(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-h"}, "usage: reshjob [-p PORT]"},
		{[]string{"--help"}, "Commands: run, submit, attach, ls, status, cancel"},
		{[]string{"host", "attach", "-h"}, "-from N[:M]"},
		{[]string{"host", "ls", "-h"}, "-state S"},
		{[]string{"host", "submit", "-h"}, "prints its id"},
		{[]string{"host", "status", "--help"}, "-json"},
		{[]string{"host", "cancel", "-h"}, "Cancels job ID"},
		{[]string{"host", "run", "-h"}, "-mem SIZE"},
		{[]string{"--version"}, "reshjob "},
	} {
		var stdout, stderr strings.Builder
		_, code, done := Parse(c.args, &stdout, &stderr)
		if !done || code != 0 || stderr.Len() != 0 || !strings.Contains(stdout.String(), c.want) {
			t.Errorf("%q: code %d done %v stdout %q stderr %q; want 0 and %q", c.args, code, done, stdout.String(), stderr.String(), c.want)
		}
	}
}

func TestLanguage(t *testing.T) {
	for name, want := range map[string]string{
		"hello.py": "python", "Main.java": "java", "a.c": "c", "a.cpp": "c++", "dir.d/b.cc": "c++", "run.sh": "sh",
		"x.rs": "", "Makefile": "", "c": "", "a.py.txt": "",
	} {
		got, ok := Language(name)
		if got != want || ok != (want != "") {
			t.Errorf("Language(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
}

func TestExitStatusAndLine(t *testing.T) {
	for _, c := range []struct {
		v    proto.Verdict
		e    proto.Exit
		code int
		line string
	}{
		{proto.Verdict{Verdict: proto.VerdictOK}, proto.Exit{}, 0, "reshjob: OK"},
		{proto.Verdict{Verdict: proto.VerdictRuntimeError, Status: 3}, proto.Exit{Code: 3}, 3, "reshjob: RUNTIME_ERROR (exit status 3)"},
		{proto.Verdict{Verdict: proto.VerdictRuntimeError, Signal: 11}, proto.Exit{Signal: 11}, 139, "reshjob: RUNTIME_ERROR (killed by signal 11, SIGSEGV)"},
		{proto.Verdict{Verdict: proto.VerdictCompileError, Detail: "gcc: exit status 1"}, proto.Exit{Code: 121}, 121, "reshjob: COMPILE_ERROR (gcc: exit status 1)"},
		{proto.Verdict{Verdict: proto.VerdictOutputLimit}, proto.Exit{Code: 1}, 122, "reshjob: OUTPUT_LIMIT"},
		{proto.Verdict{Verdict: proto.VerdictMemoryLimit, Detail: "512 MiB\n"}, proto.Exit{Signal: 9}, 123, "reshjob: MEMORY_LIMIT (512 MiB)"},
		{proto.Verdict{Verdict: proto.VerdictTimeLimit, Detail: "wall\x1b[2Jtime"}, proto.Exit{Code: 124}, 124, "reshjob: TIME_LIMIT (wall?[2Jtime)"},
		{proto.Verdict{Verdict: proto.VerdictSandboxError, Detail: "no bwrap"}, proto.Exit{Code: 125}, 125, "reshjob: SANDBOX_ERROR (no bwrap)"},
		{proto.Verdict{Verdict: "NEW"}, proto.Exit{Code: 7}, 7, "reshjob: NEW"},
		{proto.Verdict{Verdict: "NEW"}, proto.Exit{Code: 300}, 255, "reshjob: NEW"},
	} {
		if code := ExitStatus(c.v, c.e); code != c.code {
			t.Errorf("ExitStatus(%+v, %+v) = %d, want %d", c.v, c.e, code, c.code)
		}
		if line := VerdictLine(c.v); line != c.line {
			t.Errorf("VerdictLine(%+v) = %q, want %q", c.v, line, c.line)
		}
	}
}

func TestParseCommands(t *testing.T) {
	parse := func(args ...string) Options {
		t.Helper()
		var out strings.Builder
		o, _, done := Parse(args, &out, &out)
		require.False(t, done, "%q: %s", args, out.String())
		return o
	}
	o := parse("-v", "-give-up", "5s", "h", "submit", "-lang", "c", "-procs", "2", "prog", "x")
	assert.True(t, o.Verbose)
	assert.Equal(t, 5*time.Second, o.Client.GiveUp)
	assert.Equal(t, RunOptions{Lang: "c", File: "prog", Args: []string{"x"}, Limits: proto.JobLimits{Procs: 2}}, o.Run)
	assert.Equal(t, client.DefaultGiveUp, parse("h", "ls").Client.GiveUp)
	assert.Equal(t, AttachOptions{ID: 7, From: Offsets{Stdout: 10, Stderr: 3}, JSON: true}, parse("h", "attach", "-json", "-from", "10:3", "7").Attach)
	assert.Equal(t, AttachOptions{ID: 7, From: Offsets{Stdout: 10, Stderr: 10}}, parse("h", "attach", "-from", "10", "7").Attach)
	assert.Equal(t, ListOptions{All: true, State: "failed", JSON: true}, parse("h", "ls", "-all", "-state", "failed", "-json").List)
	o = parse("h", "status", "-json", "12")
	assert.Equal(t, "status", o.Command)
	assert.EqualValues(t, 12, o.ID)
	assert.True(t, o.JSON)
	o = parse("h", "cancel", "13")
	assert.EqualValues(t, 13, o.ID)
}

func TestParseFrom(t *testing.T) {
	for in, want := range map[string]Offsets{"": {}, "0": {}, "5": {5, 5}, "5:0": {5, 0}, "0:7": {0, 7}, "123456789012:1": {123456789012, 1}} {
		got, err := ParseFrom(in)
		require.NoError(t, err, "%q", in)
		assert.Equal(t, want, got, "%q", in)
		if in != "" {
			back, err := ParseFrom(got.String())
			require.NoError(t, err)
			assert.Equal(t, got, back, "String round trip of %q", in)
		}
	}
	for _, in := range []string{"x", "-1", "1:", ":1", "1:2:3", "+1", " 1", "1.5", "99999999999999999999"} {
		_, err := ParseFrom(in)
		assert.Error(t, err, "%q", in)
	}
}
