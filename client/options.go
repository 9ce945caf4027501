package client

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// DefaultPort is the port reshd listens on unless told otherwise.
const DefaultPort = 4200

// Usage is resh's one-line usage.
const Usage = "usage: resh [-p PORT] [-t | -T] [-allow PATH]... [-no-files] [-v] [-i FILE] [-known-only] [-insecure] [-give-up DURATION] HOST[:PORT] [COMMAND [ARG...]]"

// UsageError is Parse's error: bad flags, no host, a bad port. Its message
// is one line without a prefix.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usageErr(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// Options is resh's command line.
type Options struct {
	// Host and Port name the server. Port comes from -p, else HOST:PORT,
	// else DefaultPort.
	Host string
	Port int
	// ForceTTY (-t) asks for a pseudo-terminal even with a command; NoTTY
	// (-T) never asks for one.
	ForceTTY, NoTTY bool
	// Allow lists the client paths, besides the working directory, that
	// lcat and ltee may reach (-allow, repeatable): directories, or single
	// files; see package access for what it takes to reach a hidden file,
	// a key or a FIFO.
	Allow []string
	// Identity (-i) is the private key file to present, an OpenSSH
	// ed25519 key; empty means RESH_HOME/id_ed25519, created if missing.
	Identity string
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
	// NoFiles (-no-files) refuses every lcat and ltee transfer: the
	// server reaches no client file at all.
	NoFiles bool
	// Verbose (-v) announces every lcat and ltee transfer on stderr even
	// when it is not a terminal, and says when a read stopped early.
	Verbose bool
	// Command is the remote command, its arguments joined with single
	// spaces as ssh does; empty asks for a login shell.
	Command string
}

// Addr returns host:port for dialling.
func (o *Options) Addr() string {
	return net.JoinHostPort(o.Host, strconv.Itoa(o.Port))
}

// WantTTY reports whether a pseudo-terminal is requested: with -t, never
// with -T, otherwise when there is no command and stdin is a terminal.
func (o *Options) WantTTY(stdinIsTerminal bool) bool {
	switch {
	case o.NoTTY:
		return false
	case o.ForceTTY:
		return true
	}
	return o.Command == "" && stdinIsTerminal
}

type dirList []string

func (d *dirList) String() string     { return strings.Join(*d, ",") }
func (d *dirList) Set(s string) error { *d = append(*d, s); return nil }

// Parse parses resh's arguments (without the program name). Flags come
// before HOST; everything after HOST is the command. Its errors are
// *UsageError, or flag.ErrHelp for -h.
func Parse(args []string) (*Options, error) {
	o := &Options{}
	fs := flag.NewFlagSet("resh", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	port := fs.Int("p", DefaultPort, "`PORT` of reshd on HOST")
	fs.BoolVar(&o.ForceTTY, "t", false, "force a pseudo-terminal")
	fs.BoolVar(&o.NoTTY, "T", false, "never a pseudo-terminal")
	fs.Var((*dirList)(&o.Allow), "allow", "a client `PATH` (directory or file) lcat and ltee may reach (repeatable)")
	fs.StringVar(&o.Identity, "i", "", "private key `FILE` (OpenSSH ed25519) instead of RESH_HOME/id_ed25519")
	fs.BoolVar(&o.KnownOnly, "known-only", false, "refuse a server whose host key is not in known_hosts yet")
	fs.BoolVar(&o.Insecure, "insecure", false, "no TLS and no keys (only to a reshd -insecure)")
	fs.BoolVar(&o.NoFiles, "no-files", false, "refuse every lcat and ltee transfer")
	fs.BoolVar(&o.Verbose, "v", false, "verbose: announce every lcat and ltee transfer")
	fs.DurationVar(&o.GiveUp, "give-up", DefaultGiveUp, "give up after `DURATION` of refused reconnections (reshd gone)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageErr("%v", err)
	}
	if o.GiveUp <= 0 {
		return nil, usageErr("-give-up must be positive, not %v", o.GiveUp)
	}
	if o.ForceTTY && o.NoTTY {
		return nil, usageErr("-t and -T exclude each other")
	}
	if o.Insecure && (o.Identity != "" || o.KnownOnly) {
		return nil, usageErr("-insecure excludes -i and -known-only")
	}
	if fs.NArg() == 0 {
		return nil, usageErr("no HOST given")
	}
	portSet := false
	fs.Visit(func(f *flag.Flag) { portSet = portSet || f.Name == "p" })
	target := fs.Arg(0)
	o.Host, o.Port = target, *port
	if strings.HasPrefix(target, "[") || strings.Count(target, ":") == 1 {
		h, p, err := net.SplitHostPort(target)
		if err != nil {
			return nil, usageErr("bad HOST[:PORT] %q", target)
		}
		o.Host = h
		if !portSet {
			n, err := strconv.Atoi(p)
			if err != nil {
				return nil, usageErr("bad port in %q", target)
			}
			o.Port = n
		}
	}
	if o.Host == "" || strings.HasPrefix(o.Host, "-") {
		return nil, usageErr("bad HOST %q", target)
	}
	if o.Port < 1 || o.Port > 65535 {
		return nil, usageErr("port %d out of range", o.Port)
	}
	o.Command = strings.Join(fs.Args()[1:], " ")
	return o, nil
}
