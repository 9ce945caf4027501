package client

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// DefaultPort is the port reshd listens on unless told otherwise.
const DefaultPort = 4200

// Usage is resh's synopsis.
const Usage = "usage: resh [-46nqTtVv] [-p PORT] [-l USER] [-i FILE] [-F FILE] [-o KEY=VALUE]... [-allow PATH]... [-no-files] [-known-only] [-insecure] [-give-up DURATION] [-on NAME | -all | -executors] [USER@]HOST[:PORT] [--] [COMMAND [ARG...]]"

// Help describes every option, for -h; Usage comes first.
const Help = `Options may come before and after HOST, until the command starts; -- ends them.
HOST may be an alias from ~/.ssh/config (HostName, Port, User, IdentityFile),
[IPV6] or [IPV6]:PORT.

  -4, -6             use IPv4 or IPv6 addresses only
  -all               run COMMAND on every executor that is up, each output line
                     prefixed with the executor's name (through a master)
  -allow PATH        a client file or directory lcat and ltee may reach (repeatable)
  -executors         list the executors of HOST (a master) and exit
  -F FILE            ssh configuration file instead of ~/.ssh/config ("none": none)
  -give-up DURATION  give up after DURATION of refused reconnections (default 30s)
  -h, --help         print this help
  -i FILE            private key (OpenSSH ed25519) instead of RESH_HOME/id_ed25519
  -insecure          no TLS and no keys (only to a reshd -insecure)
  -known-only        refuse a server whose host key is not in known_hosts yet
  -l USER            the user to run as (reshd runs sessions as its own user only)
  -n                 stdin from /dev/null
  -no-files          refuse every lcat and ltee transfer
  -o KEY=VALUE       Port, User, IdentityFile, ConnectTimeout (seconds),
                     StrictHostKeyChecking (yes|accept-new), AddressFamily
                     (any|inet|inet6), RequestTTY (auto|no|yes|force), LogLevel,
                     ServerAliveInterval (ignored), GiveUp, NoFiles, Allow
  -on NAME           run on the executor NAME (through a master)
  -p PORT            reshd's port on HOST (default 4200)
  -q                 quiet: no notices (new host key, reconnections, transfers)
  -T                 no pseudo-terminal
  -t                 a pseudo-terminal when stdin is a terminal; -tt: always
  -V, --version      print the version and the commit
  -v                 verbose: connection events and timings (-vv: more)

Escapes, typed at the start of a line on a terminal: ~. ends the session,
~? lists the escapes, ~~ sends a ~.`

// ErrVersion is Parse's error for -V and --version: print the version and
// exit 0.
var ErrVersion = errors.New("version requested")

// errHelp is Parse's error for -h and --help.
var errHelp = flag.ErrHelp

// UsageError is Parse's error: bad options, no host, a bad port. Its
// message is one line without a prefix.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usageErr(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// Options is resh's command line.
type Options struct {
	// Host names the server as typed: a name, an address, or an alias
	// from the ssh configuration, which Run resolves.
	Host string
	// Port comes from -p or -o Port, else HOST:PORT; 0 means not given:
	// the ssh configuration's, else DefaultPort.
	Port int
	// User (USER@HOST, -l, -o User) is the user to run as; reshd refuses
	// a user other than its own. Empty: reshd's.
	User string
	// ForceTTY (-t) asks for a pseudo-terminal even with a command, when
	// stdin is a terminal; with ForceTTYAlways (-tt) even when it is not.
	// NoTTY (-T) never asks for one.
	ForceTTY, ForceTTYAlways, NoTTY bool
	// NullStdin (-n) reads stdin from /dev/null.
	NullStdin bool
	// Allow lists the client paths, besides the working directory, that
	// lcat and ltee may reach (-allow, repeatable): directories, or single
	// files; see package access for what it takes to reach a hidden file,
	// a key or a FIFO.
	Allow []string
	// Identity (-i) is the private key file to present, an OpenSSH
	// ed25519 key; empty means RESH_HOME/id_ed25519, created if missing.
	Identity string
	// ConfigFile (-F) is the ssh configuration read for host aliases;
	// empty means ~/.ssh/config, "none" none.
	ConfigFile string
	// KnownOnly (-known-only) refuses a server whose host key is not in
	// RESH_HOME/known_hosts yet, instead of recording it.
	KnownOnly bool
	// Insecure (-insecure) speaks plain TCP, without TLS or keys, to a
	// reshd -insecure.
	Insecure bool
	// GiveUp (-give-up) is how long resh keeps redialling, once the
	// connection was lost, while the server refuses it (reshd is gone)
	// before it ends with 255; 0 means DefaultGiveUp. Other failures keep
	// redialling for the server's whole detach timeout.
	GiveUp time.Duration
	// ConnectTimeout (-o ConnectTimeout) bounds connecting to reshd; 0
	// means DialTimeout.
	ConnectTimeout time.Duration
	// Network is "tcp4" (-4), "tcp6" (-6), or empty for either.
	Network string
	// NoFiles (-no-files) refuses every lcat and ltee transfer: the
	// server reaches no client file at all.
	NoFiles bool
	// Verbosity counts -v: 1 prints connection events and timings on
	// stderr, 2 and more add detail. Verbose is Verbosity > 0: transfers
	// are announced even when stderr is not a terminal.
	Verbosity int
	Verbose   bool
	// Quiet (-q) prints no notices: new host key, reconnections,
	// transfers, the refused pseudo-terminal. Errors are still printed.
	Quiet bool
	// Command is the remote command, its arguments joined with single
	// spaces as ssh does; empty asks for a login shell.
	Command string
	// On (-on NAME) names the executor that must run the command, when
	// HOST is a master; empty lets the master place it.
	On string
	// All (-all) runs Command on every executor of the master that is up,
	// at once, each output line prefixed with the executor's name.
	All bool
	// ListExecutors (-executors) prints the master's table of executors
	// instead of running a command.
	ListExecutors bool
}

// Addr returns host:port for dialling.
func (o *Options) Addr() string {
	port := o.Port
	if port == 0 {
		port = DefaultPort
	}
	return net.JoinHostPort(o.Host, strconv.Itoa(port))
}

// WantTTY reports whether a pseudo-terminal is requested: never with -T,
// always with -tt, with -t when stdin is a terminal, otherwise when there
// is no command and stdin is a terminal.
func (o *Options) WantTTY(stdinIsTerminal bool) bool {
	switch {
	case o.NoTTY:
		return false
	case o.ForceTTYAlways:
		return true
	case o.ForceTTY:
		return stdinIsTerminal
	}
	return o.Command == "" && stdinIsTerminal
}

// PTYRefused reports whether -t asked for a pseudo-terminal that is not
// allocated because stdin is not a terminal (ssh says so; -tt forces it).
func (o *Options) PTYRefused(stdinIsTerminal bool) bool {
	return o.ForceTTY && !o.ForceTTYAlways && !o.NoTTY && !stdinIsTerminal
}

// Parse parses resh's arguments (without the program name) as ssh does:
// options before and after HOST until the first word of the command, or
// until "--". Its errors are *UsageError, flag.ErrHelp for -h and
// ErrVersion for -V.
func Parse(args []string) (*Options, error) {
	p := &parser{o: &Options{GiveUp: DefaultGiveUp}}
	var target string
	i := 0
	for i < len(args) {
		a := args[i]
		i++
		if a == "--" {
			if target == "" && i < len(args) {
				target = args[i]
				i++
			}
			break
		}
		if len(a) > 1 && a[0] == '-' {
			n, err := p.option(a, args[i:])
			if err != nil {
				return nil, err
			}
			i += n
			continue
		}
		if target == "" {
			target = a
			continue
		}
		i-- // the command starts
		break
	}
	o := p.o
	if target == "" {
		return nil, usageErr("no HOST given")
	}
	if err := p.target(target); err != nil {
		return nil, err
	}
	if o.ForceTTY && o.NoTTY {
		return nil, usageErr("-t and -T exclude each other")
	}
	if o.Insecure && (o.Identity != "" || o.KnownOnly) {
		return nil, usageErr("-insecure excludes -i and -known-only")
	}
	o.Verbose = o.Verbosity > 0
	o.Command = strings.Join(args[i:], " ")
	if err := o.checkCluster(); err != nil {
		return nil, err
	}
	return o, nil
}

// checkCluster refuses the combinations of -on, -all and -executors that
// make no sense: one of them at most; -all needs a command and runs it
// without a pseudo-terminal; -executors runs nothing.
func (o *Options) checkCluster() error {
	switch {
	case o.All && o.On != "":
		return usageErr("-all and -on exclude each other")
	case o.ListExecutors && (o.All || o.On != ""):
		return usageErr("-executors excludes -all and -on")
	case o.ListExecutors && o.Command != "":
		return usageErr("-executors takes no COMMAND")
	case o.All && o.Command == "":
		return usageErr("-all needs a COMMAND to run on every executor")
	case o.All && o.ForceTTY:
		return usageErr("-all runs without a pseudo-terminal: -t is not allowed with it")
	}
	return nil
}

// parser holds Parse's state.
type parser struct {
	o *Options
}

// long options, spelt -name or --name, with -name=VALUE or -name VALUE for
// those taking a value.
var longOptions = map[string]bool{ // name: takes a value
	"allow": true, "give-up": true, "on": true,
	"all": false, "executors": false,
	"no-files": false, "known-only": false, "insecure": false, "help": false, "version": false,
}

// option applies the option word a, which starts with '-', taking its value
// from rest when needed; it returns how many words of rest it used.
func (p *parser) option(a string, rest []string) (int, error) {
	name, value, hasValue := strings.Cut(strings.TrimPrefix(a[1:], "-"), "=")
	if takes, ok := longOptions[name]; ok {
		used := 0
		if takes && !hasValue {
			if len(rest) == 0 {
				return 0, usageErr("option -%s needs an argument", name)
			}
			value, used = rest[0], 1
		} else if !takes && hasValue {
			return 0, usageErr("option -%s takes no value", name)
		}
		return used, p.long(name, value)
	}
	if strings.HasPrefix(a, "--") {
		return 0, usageErr("unknown option %s", a)
	}
	// A cluster of one-letter options, as getopt: -tt, -vq, -p22, -oPort=22.
	for j := 1; j < len(a); j++ {
		c := a[j]
		switch c {
		case 'p', 'l', 'i', 'o', 'F':
			value, used := a[j+1:], 0
			if value == "" {
				if len(rest) == 0 {
					return 0, usageErr("option -%c needs an argument", c)
				}
				value, used = rest[0], 1
			}
			return used, p.withValue(c, value)
		case 't':
			if p.o.ForceTTY {
				p.o.ForceTTYAlways = true
			}
			p.o.ForceTTY = true
		case 'T':
			p.o.NoTTY = true
		case 'n':
			p.o.NullStdin = true
		case 'v':
			p.o.Verbosity++
			p.o.Quiet = false
		case 'q':
			p.o.Quiet, p.o.Verbosity = true, 0
		case '4':
			p.o.Network = "tcp4"
		case '6':
			p.o.Network = "tcp6"
		case 'V':
			return 0, ErrVersion
		case 'h':
			return 0, errHelp
		default:
			return 0, usageErr("unknown option -%c", c)
		}
	}
	return 0, nil
}

// long applies a long option.
func (p *parser) long(name, value string) error {
	o := p.o
	switch name {
	case "allow":
		o.Allow = append(o.Allow, value)
	case "give-up":
		d, err := time.ParseDuration(value)
		if err != nil || d <= 0 {
			return usageErr("-give-up must be a positive duration such as 30s, not %q", value)
		}
		o.GiveUp = d
	case "on":
		if value == "" {
			return usageErr("-on needs an executor NAME")
		}
		o.On = value
	case "all":
		o.All = true
	case "executors":
		o.ListExecutors = true
	case "no-files":
		o.NoFiles = true
	case "known-only":
		o.KnownOnly = true
	case "insecure":
		o.Insecure = true
	case "help":
		return errHelp
	case "version":
		return ErrVersion
	}
	return nil
}

// withValue applies a one-letter option with its value.
func (p *parser) withValue(c byte, value string) error {
	o := p.o
	switch c {
	case 'p':
		port, err := parsePort(value)
		if err != nil {
			return err
		}
		o.Port = port
	case 'l':
		if o.User == "" {
			o.User = value
		}
	case 'i':
		o.Identity = value
	case 'F':
		o.ConfigFile = value
	case 'o':
		return p.setting(value)
	}
	return nil
}

// OptionKeys are the keys -o takes, as spelt in messages.
var OptionKeys = []string{"Port", "User", "IdentityFile", "ConnectTimeout", "StrictHostKeyChecking",
	"AddressFamily", "RequestTTY", "LogLevel", "ServerAliveInterval", "ServerAliveCountMax", "GiveUp", "NoFiles", "Allow"}

// setting applies -o KEY=VALUE (or "KEY VALUE"), keys as in ssh_config,
// case-insensitive.
func (p *parser) setting(kv string) error {
	key, value, ok := strings.Cut(kv, "=")
	if !ok {
		key, value, ok = strings.Cut(strings.TrimSpace(kv), " ")
	}
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	if !ok || key == "" {
		return usageErr("-o %q: want KEY=VALUE", kv)
	}
	bad := func(want string) error { return usageErr("-o %s=%s: want %s", key, value, want) }
	o := p.o
	switch strings.ToLower(key) {
	case "port":
		port, err := parsePort(value)
		if err != nil {
			return err
		}
		o.Port = port
	case "user":
		if o.User == "" {
			o.User = value
		}
	case "identityfile":
		o.Identity = value
	case "connecttimeout":
		n, err := strconv.Atoi(value)
		if err != nil || n <= 0 {
			return bad("a positive number of seconds")
		}
		o.ConnectTimeout = time.Duration(n) * time.Second
	case "stricthostkeychecking":
		switch strings.ToLower(value) {
		case "yes":
			o.KnownOnly = true
		case "accept-new":
			o.KnownOnly = false
		default:
			return bad("yes or accept-new (resh never accepts a changed host key)")
		}
	case "addressfamily":
		switch strings.ToLower(value) {
		case "any":
			o.Network = ""
		case "inet":
			o.Network = "tcp4"
		case "inet6":
			o.Network = "tcp6"
		default:
			return bad("any, inet or inet6")
		}
	case "requesttty":
		o.ForceTTY, o.ForceTTYAlways, o.NoTTY = false, false, false
		switch strings.ToLower(value) {
		case "auto":
		case "no":
			o.NoTTY = true
		case "yes":
			o.ForceTTY = true
		case "force":
			o.ForceTTY, o.ForceTTYAlways = true, true
		default:
			return bad("auto, no, yes or force")
		}
	case "loglevel":
		o.Quiet, o.Verbosity = false, 0
		switch strings.ToLower(value) {
		case "quiet", "fatal", "error":
			o.Quiet = true
		case "info":
		case "verbose", "debug", "debug1":
			o.Verbosity = 1
		case "debug2":
			o.Verbosity = 2
		case "debug3":
			o.Verbosity = 3
		default:
			return bad("QUIET, FATAL, ERROR, INFO, VERBOSE, DEBUG, DEBUG1, DEBUG2 or DEBUG3")
		}
	case "serveraliveinterval", "serveralivecountmax":
		// resh's connection checks the server's liveness on its own
		// (a heartbeat every second) and rides out outages: accepted
		// for habit's sake, with nothing to set.
		if n, err := strconv.Atoi(value); err != nil || n < 0 {
			return bad("a number")
		}
	case "giveup":
		return p.long("give-up", value)
	case "nofiles":
		b, err := yesNo(value)
		if err != nil {
			return bad("yes or no")
		}
		o.NoFiles = b
	case "allow":
		o.Allow = append(o.Allow, value)
	default:
		return usageErr("-o %s: unknown key; resh knows %s", key, strings.Join(OptionKeys, ", "))
	}
	return nil
}

// target parses [USER@]HOST[:PORT], HOST being a name, an IPv4 address, a
// bare IPv6 address, or [IPV6] with or without a port.
func (p *parser) target(target string) error {
	o := p.o
	host := target
	if at := strings.LastIndex(host, "@"); at >= 0 {
		if at == 0 {
			return usageErr("bad USER@HOST %q: no user", target)
		}
		if o.User == "" {
			o.User = host[:at]
		}
		host = host[at+1:]
	}
	port := ""
	switch {
	case strings.HasPrefix(host, "["):
		end := strings.Index(host, "]")
		if end < 0 {
			return usageErr("bad HOST[:PORT] %q", target)
		}
		h, rest := host[1:end], host[end+1:]
		switch {
		case rest == "":
		case strings.HasPrefix(rest, ":") && len(rest) > 1:
			port = rest[1:]
		default:
			return usageErr("bad HOST[:PORT] %q", target)
		}
		host = h
	case strings.Count(host, ":") == 1:
		host, port, _ = strings.Cut(host, ":")
		if port == "" {
			return usageErr("bad HOST[:PORT] %q", target)
		}
	}
	if host == "" || strings.HasPrefix(host, "-") {
		return usageErr("bad HOST %q", target)
	}
	o.Host = host
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil {
			return usageErr("bad port in %q", target)
		}
		if n < 1 || n > 65535 {
			return usageErr("port %d out of range", n)
		}
		if o.Port == 0 { // -p wins
			o.Port = n
		}
	}
	return nil
}

// parsePort parses a port number for -p and -o Port.
func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, usageErr("bad port %q", s)
	}
	if n < 1 || n > 65535 {
		return 0, usageErr("port %d out of range", n)
	}
	return n, nil
}

// yesNo parses ssh_config's yes and no.
func yesNo(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "yes", "true":
		return true, nil
	case "no", "false":
		return false, nil
	}
	return false, fmt.Errorf("not yes or no: %q", s)
}
