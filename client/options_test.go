package client

import (
	"errors"
	"flag"
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		args []string
		want Options
		addr string
	}{
		{[]string{"host"}, Options{Host: "host", Port: 4200}, "host:4200"},
		{[]string{"host:2222"}, Options{Host: "host", Port: 2222}, "host:2222"},
		{[]string{"-p", "99", "host:2222"}, Options{Host: "host", Port: 99}, "host:99"},
		{[]string{"-p", "99", "host"}, Options{Host: "host", Port: 99}, "host:99"},
		{[]string{"[::1]:5000", "ls"}, Options{Host: "::1", Port: 5000, Command: "ls"}, "[::1]:5000"},
		{[]string{"::1"}, Options{Host: "::1", Port: 4200}, "[::1]:4200"},
		{[]string{"-t", "h", "ls", "-l", "/tmp dir"}, Options{Host: "h", Port: 4200, ForceTTY: true, Command: "ls -l /tmp dir"}, "h:4200"},
		{[]string{"-T", "h", "sh", "-c", "echo 'a  b'"}, Options{Host: "h", Port: 4200, NoTTY: true, Command: "sh -c echo 'a  b'"}, "h:4200"},
		{[]string{"-allow", "/a", "-allow=/b", "h"}, Options{Host: "h", Port: 4200, Allow: []string{"/a", "/b"}}, "h:4200"},
		{[]string{"-i", "/k/id", "-known-only", "h"}, Options{Host: "h", Port: 4200, Identity: "/k/id", KnownOnly: true}, "h:4200"},
		{[]string{"-insecure", "h"}, Options{Host: "h", Port: 4200, Insecure: true}, "h:4200"},
	} {
		got, err := Parse(c.args)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.args, err)
		}
		if c.want.GiveUp == 0 {
			c.want.GiveUp = DefaultGiveUp
		}
		if !reflect.DeepEqual(*got, c.want) || got.Addr() != c.addr {
			t.Errorf("Parse(%q) = %+v (%s), want %+v (%s)", c.args, *got, got.Addr(), c.want, c.addr)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "no HOST given"},
		{[]string{"-t"}, "no HOST given"},
		{[]string{"-x", "h"}, "flag provided but not defined: -x"},
		{[]string{"-t", "-T", "h"}, "-t and -T exclude each other"},
		{[]string{"-p", "0", "h"}, "port 0 out of range"},
		{[]string{"-p", "abc", "h"}, `invalid value "abc" for flag -p: parse error`},
		{[]string{"h:port"}, `bad port in "h:port"`},
		{[]string{":22"}, `bad HOST ":22"`},
		{[]string{"-i"}, "flag needs an argument: -i"},
		{[]string{"-insecure", "-known-only", "h"}, "-insecure excludes -i and -known-only"},
	} {
		_, err := Parse(c.args)
		var ue *UsageError
		if !errors.As(err, &ue) || err.Error() != c.want {
			t.Errorf("Parse(%q) error %v, want usage error %q", c.args, err, c.want)
		}
	}
	if _, err := Parse([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("Parse(-h): %v, want flag.ErrHelp", err)
	}
}

func TestWantTTY(t *testing.T) {
	for _, c := range []struct {
		o        Options
		terminal bool
		want     bool
	}{
		{Options{}, true, true},
		{Options{}, false, false},
		{Options{Command: "ls"}, true, false},
		{Options{Command: "ls", ForceTTY: true}, false, true},
		{Options{NoTTY: true}, true, false},
	} {
		if got := c.o.WantTTY(c.terminal); got != c.want {
			t.Errorf("%+v terminal=%v: WantTTY %v, want %v", c.o, c.terminal, got, c.want)
		}
	}
}
