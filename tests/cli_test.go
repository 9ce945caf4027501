package tests

import (
	"context"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// reshCLI runs resh with args and extra environment, feeding stdin, within
// 30 seconds.
func reshCLI(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := reshCommand(ctx, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = t.TempDir()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "resh %q did not end; stderr: %s", args, errb.String())
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return result{out.String(), errb.String(), code}
}

// Options go before and after HOST until the command starts; the command
// keeps its own options; -- ends resh's.
func TestCLIOptionPlacement(t *testing.T) {
	d := startReshd(t)
	for _, c := range []struct {
		name string
		args []string
		out  string
	}{
		{"before HOST", append([]string{"-T"}, d.args(d.addr, "echo", "-n", "x")...), "x"},
		{"after HOST", append(d.args(d.addr), "-T", "echo", "-n", "x"), "x"},
		{"clustered after HOST", append(d.args(d.addr), "-Tq", "tty", "||", "echo", "no-tty"), "not a tty\nno-tty\n"},
		{"-- after HOST", append(d.args(d.addr), "--", "echo", "-T"), "-T\n"},
		{"-- before HOST", []string{"-T", "--", d.addr, "echo", "-T"}, "-T\n"},
		{"-p after HOST", append(d.args(hostOf(t, d.addr)), "-p", portOf(t, d.addr), "echo", "ok"), "ok\n"},
		{"-o Port", append(d.args(hostOf(t, d.addr)), "-o", "Port="+portOf(t, d.addr), "echo", "ok"), "ok\n"},
		{"-4", append([]string{"-4"}, d.args(d.addr, "echo", "ok")...), "ok\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := reshCLI(t, nil, "", c.args...)
			assert.Equal(t, 0, r.code, r.stderr)
			assert.Equal(t, c.out, r.stdout)
			assert.Empty(t, r.stderr)
		})
	}
	// Bad usage: one line and the usage, exit 2.
	r := reshCLI(t, nil, "", append(d.args(d.addr), "-o", "Bogus=1", "true")...)
	assert.Equal(t, 2, r.code)
	assert.True(t, strings.HasPrefix(r.stderr, "resh: -o Bogus: unknown key; resh knows Port, "), r.stderr)
}

// USER@HOST is accepted for reshd's own user and refused, clearly, for
// another.
func TestCLIUserAtHost(t *testing.T) {
	d := startReshd(t)
	me, err := user.Current()
	require.NoError(t, err)
	r := reshCLI(t, nil, "", d.args(me.Username+"@"+d.addr, "id", "-un")...)
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, me.Username+"\n", r.stdout)

	for _, args := range [][]string{
		d.args("nosuchuser-resh@"+d.addr, "echo", "ran"),
		append([]string{"-l", "nosuchuser-resh"}, d.args(d.addr, "echo", "ran")...),
		append(d.args(d.addr), "-o", "User=nosuchuser-resh", "echo", "ran"),
	} {
		r = reshCLI(t, nil, "", args...)
		assert.Equal(t, 255, r.code, "%q", args)
		assert.Empty(t, r.stdout, "%q", args)
		assert.Regexp(t, `^resh: reshd on \S+ runs sessions as `+me.Username+` only, not nosuchuser-resh\n$`, r.stderr, "%q", args)
	}
}

// Host aliases from ~/.ssh/config (a temporary HOME): HostName, Port and
// User; the command line wins; -F names another file.
func TestCLISSHConfigAlias(t *testing.T) {
	d := startReshd(t)
	me, err := user.Current()
	require.NoError(t, err)
	home := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(home, ".ssh"), 0o700))
	config := "Host myalias\n  HostName " + hostOf(t, d.addr) + "\n  Port " + portOf(t, d.addr) + "\n  User " + me.Username + "\n" +
		"Host wronguser\n  HostName " + hostOf(t, d.addr) + "\n  Port " + portOf(t, d.addr) + "\n  User nosuchuser-resh\n" +
		"Host wrongport\n  HostName " + hostOf(t, d.addr) + "\n  Port 1\n"
	require.NoError(t, os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(config), 0o600))
	env := []string{"HOME=" + home}

	r := reshCLI(t, env, "", d.args("myalias", "echo", "via-alias")...)
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "via-alias\n", r.stdout)

	r = reshCLI(t, env, "", d.args("wronguser", "true")...)
	assert.Equal(t, 255, r.code)
	assert.Contains(t, r.stderr, "only, not nosuchuser-resh")
	r = reshCLI(t, env, "", d.args(me.Username+"@wronguser", "echo", "ok")...)
	assert.Equal(t, 0, r.code, "USER@ wins over the configuration: %s", r.stderr)

	r = reshCLI(t, env, "", d.args("wrongport", "echo", "ok")...)
	assert.Equal(t, 255, r.code, "the configuration's port 1 is used")
	r = reshCLI(t, env, "", append([]string{"-p", portOf(t, d.addr)}, d.args("wrongport", "echo", "ok")...)...)
	assert.Equal(t, 0, r.code, "-p wins over the configuration: %s", r.stderr)
	assert.Equal(t, "ok\n", r.stdout)

	other := filepath.Join(t.TempDir(), "config")
	require.NoError(t, os.WriteFile(other, []byte("Host elsewhere\n  HostName "+hostOf(t, d.addr)+"\n  Port "+portOf(t, d.addr)+"\n"), 0o600))
	r = reshCLI(t, env, "", append([]string{"-F", other}, d.args("elsewhere", "echo", "ok")...)...)
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "ok\n", r.stdout)
}

// -n: a while-read loop calling resh keeps its input.
func TestCLINullStdin(t *testing.T) {
	d := startReshd(t)
	reshArgs := []string{filepath.Join(bin, "resh"), "-n"}
	if d.insecure {
		reshArgs = append(reshArgs, "-insecure")
	}
	script := `while read x; do ` + strings.Join(reshArgs, " ") + ` ` + d.addr + ` echo got-$x; done`
	r := local(t, t.TempDir(), "a\nb\nc\n", script)
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "got-a\ngot-b\ngot-c\n", r.stdout)
}

// -t with stdin not a terminal: no pseudo-terminal, said as ssh says it,
// and the command ends at stdin's EOF; -q keeps quiet about it.
func TestCLITTYWithPipedStdin(t *testing.T) {
	d := startReshd(t)
	r := reshCLI(t, nil, "hi\n", append([]string{"-t"}, d.args(d.addr, "cat; tty || true")...)...)
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "hi\nnot a tty\n", r.stdout)
	assert.Equal(t, "Pseudo-terminal will not be allocated because stdin is not a terminal.\n", r.stderr)

	r = reshCLI(t, nil, "hi\n", append([]string{"-t", "-q"}, d.args(d.addr, "cat")...)...)
	assert.Equal(t, 0, r.code)
	assert.Equal(t, "hi\n", r.stdout)
	assert.Empty(t, r.stderr)
}

// -tt forces the pseudo-terminal, and the end of stdin ends a command that
// reads it, with or without a final newline.
func TestCLIForcedTTYEndsAtEOF(t *testing.T) {
	d := startReshd(t)
	for _, in := range []string{"one\ntwo\n", "one\ntwo"} {
		r := reshCLI(t, nil, in, append([]string{"-tt"}, d.args(d.addr, "tty >/dev/null && cat && echo cat-ended")...)...)
		assert.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stdout, "two")
		assert.Contains(t, r.stdout, "cat-ended")
	}
}

// ~? lists the escapes, locally, and the session goes on.
func TestCLIEscapeHelp(t *testing.T) {
	d := startReshd(t)
	tm := startTerm(t, 24, 80, "-t", d.addr, "echo ready; cat")
	tm.expect("ready", 15*time.Second)
	tm.send("\r~?")
	tm.expect("Supported escape sequences:", 15*time.Second)
	tm.expect(" ~.   - terminate connection", 5*time.Second)
	tm.send("abc\r")
	tm.expect("abc", 15*time.Second)
	tm.mu.Lock()
	assert.NotContains(t, tm.out.String(), "~?", "the escape is not sent")
	tm.mu.Unlock()
	tm.send("\r~.")
	assert.Equal(t, 255, tm.wait(15*time.Second))
}

// -V and --version print the version and the commit.
func TestCLIVersion(t *testing.T) {
	for _, v := range []string{"-V", "--version"} {
		out, err := exec.Command(filepath.Join(bin, "resh"), v).CombinedOutput()
		require.NoError(t, err, v)
		assert.Regexp(t, `^resh \S+ \(commit [^)]*\)\n$`, string(out), v)
	}
}

// -v says what the connection does, with timings; -q silences the notices
// of a first contact.
func TestCLIVerboseAndQuiet(t *testing.T) {
	d := startReshd(t)
	r := reshCLI(t, nil, "", append([]string{"-v"}, d.args(d.addr, "true")...)...)
	assert.Equal(t, 0, r.code, r.stderr)
	for _, want := range []string{"resh: connecting to " + d.addr, "resh: TCP connected to " + d.addr + " in ", "resh: command started in ", "resh: session closed in "} {
		assert.Contains(t, r.stderr, want)
	}

	// A RESH_HOME with resh's key but no known_hosts yet.
	freshHome := t.TempDir()
	if key, err := os.ReadFile(filepath.Join(os.Getenv("RESH_HOME"), "id_ed25519")); err == nil {
		require.NoError(t, os.WriteFile(filepath.Join(freshHome, "id_ed25519"), key, 0o600))
	}
	fresh := []string{"RESH_HOME=" + freshHome}
	r = reshCLI(t, fresh, "", append([]string{"-q"}, d.args(d.addr, "echo", "ok")...)...)
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "ok\n", r.stdout)
	assert.Empty(t, r.stderr, "no new identity or new host notice")
}

// A server that accepts the connection and says nothing is named as such
// within the connect timeout.
func TestCLISilentServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		l.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	}()
	start := time.Now()
	r := reshCLI(t, nil, "", "-o", "ConnectTimeout=2", l.Addr().String(), "true")
	assert.Equal(t, 255, r.code)
	assert.Equal(t, "resh: "+l.Addr().String()+" accepted the connection but never answered: is it a reshd?\n", r.stderr)
	assert.Less(t, time.Since(start), 15*time.Second)
}

// [IPV6] without a port, with -p.
func TestCLIBracketedIPv6(t *testing.T) {
	if l, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skip("no IPv6 loopback:", err)
	} else {
		l.Close()
	}
	d := startReshdAt(t, "[::1]:0", nil)
	d.firstContact(t, d.addr)
	r := reshCLI(t, nil, "", append([]string{"-p", portOf(t, d.addr)}, d.args("[::1]", "echo", "v6")...)...)
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "v6\n", r.stdout)
}

func hostOf(t *testing.T, addr string) string {
	h, _, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	return h
}

func portOf(t *testing.T, addr string) string {
	_, p, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	_, err = strconv.Atoi(p)
	require.NoError(t, err)
	return p
}
