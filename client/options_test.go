package client

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		args []string
		want Options
		addr string
	}{
		{[]string{"host"}, Options{Host: "host"}, "host:4200"},
		{[]string{"host:2222"}, Options{Host: "host", Port: 2222}, "host:2222"},
		{[]string{"-p", "99", "host:2222"}, Options{Host: "host", Port: 99}, "host:99"},
		{[]string{"host:2222", "-p", "99"}, Options{Host: "host", Port: 99}, "host:99"},
		{[]string{"-p99", "host"}, Options{Host: "host", Port: 99}, "host:99"},
		{[]string{"[::1]:5000", "ls"}, Options{Host: "::1", Port: 5000, Command: "ls"}, "[::1]:5000"},
		{[]string{"[::1]", "ls"}, Options{Host: "::1", Command: "ls"}, "[::1]:4200"},
		{[]string{"alice@[::1]"}, Options{Host: "::1", User: "alice"}, "[::1]:4200"},
		{[]string{"::1"}, Options{Host: "::1"}, "[::1]:4200"},
		{[]string{"root@h:22", "id"}, Options{Host: "h", Port: 22, User: "root", Command: "id"}, "h:22"},
		{[]string{"-l", "bob", "alice@h"}, Options{Host: "h", User: "bob"}, "h:4200"},
		{[]string{"a@b@h"}, Options{Host: "h", User: "a@b"}, "h:4200"},
		// Options after HOST, until the command starts.
		{[]string{"h", "-t", "ls"}, Options{Host: "h", ForceTTY: true, Command: "ls"}, "h:4200"},
		{[]string{"-t", "h", "ls", "-l", "/tmp dir"}, Options{Host: "h", ForceTTY: true, Command: "ls -l /tmp dir"}, "h:4200"},
		{[]string{"h", "ls", "-t"}, Options{Host: "h", Command: "ls -t"}, "h:4200"},
		{[]string{"-T", "h", "sh", "-c", "echo 'a  b'"}, Options{Host: "h", NoTTY: true, Command: "sh -c echo 'a  b'"}, "h:4200"},
		// -- ends the options.
		{[]string{"h", "--", "ls", "-l"}, Options{Host: "h", Command: "ls -l"}, "h:4200"},
		{[]string{"--", "h", "ls"}, Options{Host: "h", Command: "ls"}, "h:4200"},
		{[]string{"--", "h", "-t", "ls"}, Options{Host: "h", Command: "-t ls"}, "h:4200"},
		{[]string{"h", "--", "--"}, Options{Host: "h", Command: "--"}, "h:4200"},
		// Clusters and repeats.
		{[]string{"-tt", "h"}, Options{Host: "h", ForceTTY: true, ForceTTYAlways: true}, "h:4200"},
		{[]string{"-t", "h", "-t"}, Options{Host: "h", ForceTTY: true, ForceTTYAlways: true}, "h:4200"},
		{[]string{"-nvv", "h"}, Options{Host: "h", NullStdin: true, Verbosity: 2, Verbose: true}, "h:4200"},
		{[]string{"-v", "-q", "h"}, Options{Host: "h", Quiet: true}, "h:4200"},
		{[]string{"-4", "h"}, Options{Host: "h", Network: "tcp4"}, "h:4200"},
		{[]string{"h", "-6"}, Options{Host: "h", Network: "tcp6"}, "h:4200"},
		{[]string{"-F", "/c", "h"}, Options{Host: "h", ConfigFile: "/c"}, "h:4200"},
		// Long options, -name or --name, VALUE apart or after =.
		{[]string{"-allow", "/a", "h", "--allow=/b"}, Options{Host: "h", Allow: []string{"/a", "/b"}}, "h:4200"},
		{[]string{"-i", "/k/id", "h", "-known-only"}, Options{Host: "h", Identity: "/k/id", KnownOnly: true}, "h:4200"},
		{[]string{"h", "-insecure", "-no-files"}, Options{Host: "h", Insecure: true, NoFiles: true}, "h:4200"},
		{[]string{"-give-up", "5s", "h"}, Options{Host: "h", GiveUp: 5 * time.Second}, "h:4200"},
		// -o, keys case-insensitive, KEY=VALUE or KEY VALUE.
		{[]string{"-o", "Port=2200", "h"}, Options{Host: "h", Port: 2200}, "h:2200"},
		{[]string{"-oport 2200", "h"}, Options{Host: "h", Port: 2200}, "h:2200"},
		{[]string{"-o", "User=carol", "h"}, Options{Host: "h", User: "carol"}, "h:4200"},
		{[]string{"-o", "IdentityFile=~/k", "h"}, Options{Host: "h", Identity: "~/k"}, "h:4200"},
		{[]string{"-o", "StrictHostKeyChecking=yes", "h"}, Options{Host: "h", KnownOnly: true}, "h:4200"},
		{[]string{"-o", "ConnectTimeout=3", "h"}, Options{Host: "h", ConnectTimeout: 3 * time.Second}, "h:4200"},
		{[]string{"-o", "AddressFamily=inet6", "h"}, Options{Host: "h", Network: "tcp6"}, "h:4200"},
		{[]string{"-o", "RequestTTY=force", "h"}, Options{Host: "h", ForceTTY: true, ForceTTYAlways: true}, "h:4200"},
		{[]string{"-o", "LogLevel=DEBUG2", "h"}, Options{Host: "h", Verbosity: 2, Verbose: true}, "h:4200"},
		{[]string{"-o", "ServerAliveInterval=30", "h"}, Options{Host: "h"}, "h:4200"},
		{[]string{"-o", "GiveUp=1m", "-o", "NoFiles=yes", "-o", "Allow=/x", "h"}, Options{Host: "h", GiveUp: time.Minute, NoFiles: true, Allow: []string{"/x"}}, "h:4200"},
	} {
		got, err := Parse(c.args)
		require.NoError(t, err, "%q", c.args)
		if c.want.GiveUp == 0 {
			c.want.GiveUp = DefaultGiveUp
		}
		assert.Equal(t, c.want, *got, "%q", c.args)
		assert.Equal(t, c.addr, got.Addr(), "%q", c.args)
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "no HOST given"},
		{[]string{"-t"}, "no HOST given"},
		{[]string{"--"}, "no HOST given"},
		{[]string{"-x", "h"}, "unknown option -x"},
		{[]string{"h", "-x"}, "unknown option -x"},
		{[]string{"--bogus", "h"}, "unknown option --bogus"},
		{[]string{"-t", "-T", "h"}, "-t and -T exclude each other"},
		{[]string{"-p", "0", "h"}, "port 0 out of range"},
		{[]string{"-p", "abc", "h"}, `bad port "abc"`},
		{[]string{"h:port"}, `bad port in "h:port"`},
		{[]string{"h:70000"}, "port 70000 out of range"},
		{[]string{":22"}, `bad HOST ":22"`},
		{[]string{"[::1"}, `bad HOST[:PORT] "[::1"`},
		{[]string{"[::1]x"}, `bad HOST[:PORT] "[::1]x"`},
		{[]string{"@h"}, `bad USER@HOST "@h": no user`},
		{[]string{"--", "-h"}, `bad HOST "-h"`},
		{[]string{"-i"}, "option -i needs an argument"},
		{[]string{"h", "-allow"}, "option -allow needs an argument"},
		{[]string{"-insecure=yes", "h"}, "option -insecure takes no value"},
		{[]string{"-give-up", "0s", "h"}, `-give-up must be a positive duration such as 30s, not "0s"`},
		{[]string{"-insecure", "-known-only", "h"}, "-insecure excludes -i and -known-only"},
		{[]string{"-o", "Bogus=1", "h"}, "-o Bogus: unknown key; resh knows Port, User, IdentityFile, ConnectTimeout, StrictHostKeyChecking, AddressFamily, RequestTTY, LogLevel, ServerAliveInterval, ServerAliveCountMax, GiveUp, NoFiles, Allow"},
		{[]string{"-o", "Port", "h"}, `-o "Port": want KEY=VALUE`},
		{[]string{"-o", "StrictHostKeyChecking=no", "h"}, "-o StrictHostKeyChecking=no: want yes or accept-new (resh never accepts a changed host key)"},
		{[]string{"-o", "ConnectTimeout=0", "h"}, "-o ConnectTimeout=0: want a positive number of seconds"},
	} {
		_, err := Parse(c.args)
		var ue *UsageError
		if assert.ErrorAs(t, err, &ue, "%q", c.args) {
			assert.Equal(t, c.want, err.Error(), "%q", c.args)
		}
	}
	for _, h := range []string{"-h", "--help", "-help"} {
		_, err := Parse([]string{"host", h})
		assert.ErrorIs(t, err, flag.ErrHelp, h)
	}
	for _, v := range []string{"-V", "--version"} {
		_, err := Parse([]string{v})
		assert.ErrorIs(t, err, ErrVersion, v)
	}
}

func TestWantTTY(t *testing.T) {
	for _, c := range []struct {
		o        Options
		terminal bool
		want     bool
		refused  bool
	}{
		{Options{}, true, true, false},
		{Options{}, false, false, false},
		{Options{Command: "ls"}, true, false, false},
		{Options{Command: "ls", ForceTTY: true}, true, true, false},
		{Options{Command: "ls", ForceTTY: true}, false, false, true},
		{Options{Command: "ls", ForceTTY: true, ForceTTYAlways: true}, false, true, false},
		{Options{NoTTY: true}, true, false, false},
	} {
		assert.Equal(t, c.want, c.o.WantTTY(c.terminal), "%+v terminal=%v", c.o, c.terminal)
		assert.Equal(t, c.refused, c.o.PTYRefused(c.terminal), "%+v terminal=%v", c.o, c.terminal)
	}
}

func TestParseCluster(t *testing.T) {
	for _, c := range []struct {
		args []string
		want Options
	}{
		{[]string{"-on", "gpu-2", "m", "nvidia-smi"}, Options{Host: "m", On: "gpu-2", Command: "nvidia-smi"}},
		{[]string{"m", "--on=b", "ls"}, Options{Host: "m", On: "b", Command: "ls"}},
		{[]string{"-all", "m", "uptime"}, Options{Host: "m", All: true, Command: "uptime"}},
		{[]string{"m", "-executors"}, Options{Host: "m", ListExecutors: true}},
		{[]string{"-T", "-all", "m", "uptime"}, Options{Host: "m", All: true, NoTTY: true, Command: "uptime"}},
		// -o still takes its value glued on.
		{[]string{"-oPort=2", "m"}, Options{Host: "m", Port: 2}},
	} {
		got, err := Parse(c.args)
		require.NoError(t, err, "%q", c.args)
		c.want.GiveUp = DefaultGiveUp
		assert.Equal(t, c.want, *got, "%q", c.args)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"m", "-on"}, "option -on needs an argument"},
		{[]string{"-on=", "m", "ls"}, "-on needs an executor NAME"},
		{[]string{"-all", "-t", "m", "top"}, "-all runs without a pseudo-terminal: -t is not allowed with it"},
		{[]string{"-all", "-tt", "m", "top"}, "-all runs without a pseudo-terminal: -t is not allowed with it"},
		{[]string{"-all", "-on", "a", "m", "ls"}, "-all and -on exclude each other"},
		{[]string{"-all", "m"}, "-all needs a COMMAND to run on every executor"},
		{[]string{"-executors", "-all", "m", "ls"}, "-executors excludes -all and -on"},
		{[]string{"-executors", "-on", "a", "m"}, "-executors excludes -all and -on"},
		{[]string{"-executors", "m", "ls"}, "-executors takes no COMMAND"},
		{[]string{"-all=yes", "m", "ls"}, "option -all takes no value"},
	} {
		_, err := Parse(c.args)
		var ue *UsageError
		if assert.ErrorAs(t, err, &ue, "%q", c.args) {
			assert.Equal(t, c.want, err.Error(), "%q", c.args)
		}
	}
}
