package reshjobcmd

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"resh/client"
	"resh/internal/cli"
	"resh/lang"
	"resh/proto"
)

// Command is reshjob's command line, for -h and bad usage.
var Command = cli.Command{
	Name: "reshjob",
	Synopsis: "reshjob [-p PORT] [-i FILE] [-known-only] [-insecure] HOST COMMAND [ARGS...]\n" +
		"       reshjob [options] HOST run [-lang L] [-time D] [-cpu D] [-mem SIZE] [-procs N] [-output SIZE] [-json] FILE [ARGS...]",
	Summary: "Submits a program to HOST (a reshd, or a master that places it on an executor with\n" +
		"its language): run sends FILE, has it compiled if its language needs it and run in\n" +
		"a sandbox with ARGS and reshjob's stdin, streams its output, and exits with its\n" +
		"status (128+N for signal N), or for a verdict without one: 121 COMPILE_ERROR,\n" +
		"122 OUTPUT_LIMIT, 123 MEMORY_LIMIT, 124 TIME_LIMIT, 125 SANDBOX_ERROR; 255 for\n" +
		"reshjob's own failures. Keys and known_hosts are resh's, in RESH_HOME (default ~/.resh).\n" +
		"Commands: " + strings.Join(Commands, ", ") + " (reshjob HOST run -h describes its options).",
}

// runCommand is run's command line, for reshjob HOST run -h.
var runCommand = cli.Command{
	Name:     "reshjob",
	Synopsis: "reshjob [options] HOST run [-lang L] [-time D] [-cpu D] [-mem SIZE] [-procs N] [-output SIZE] [-json] FILE [ARGS...]",
	Summary: "Sends FILE (- reads it from stdin, with -lang; the program's stdin is then empty),\n" +
		"runs it with ARGS and reshjob's stdin, and streams its stdout and stderr. The\n" +
		"language comes from FILE's extension: .py python, .java java, .c c, .cpp and .cc\n" +
		"c++, .sh sh. Limits left out take the executor's defaults; each is capped by its\n" +
		"ceilings. SIZE is bytes, or a number with K, M or G (powers of 1024): 512M, 1G.",
}

// Commands are the commands reshjob knows.
var Commands = []string{"run"}

// Options are reshjob's parsed command line.
type Options struct {
	// Client holds the host and how to reach it: -p, -i, -known-only,
	// -insecure, as resh's.
	Client client.Options
	// Command is the command after HOST: "run".
	Command string
	// Run holds run's options and operands.
	Run RunOptions
}

// RunOptions are the options and operands of reshjob HOST run.
type RunOptions struct {
	Lang   string          // -lang, else from File's extension
	File   string          // the program's file, "-" for stdin
	Args   []string        // the program's arguments
	Limits proto.JobLimits // -time, -cpu, -mem, -procs, -output
	JSON   bool            // -json: one JSON object on stdout at the end
}

// Stdin reports whether the program's source is read from stdin.
func (r *RunOptions) Stdin() bool { return r.File == "-" }

// usageError is bad usage: its message is one line without a prefix.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// Parse parses reshjob's arguments. done is true when the program should
// exit at once with code: 0 after -h, --help or --version (their text went
// to stdout), 2 after bad usage (one line saying what is wrong and the
// synopsis went to stderr).
func Parse(args []string, stdout, stderr io.Writer) (o Options, code int, done bool) {
	fs := Command.FlagSet()
	port := fs.Int("p", client.DefaultPort, "reshd's `PORT` on HOST")
	fs.StringVar(&o.Client.Identity, "i", "", "private key `FILE` (OpenSSH ed25519) instead of RESH_HOME/id_ed25519")
	fs.BoolVar(&o.Client.KnownOnly, "known-only", false, "refuse a server whose host key is not in known_hosts yet")
	fs.BoolVar(&o.Client.Insecure, "insecure", false, "no TLS and no keys (only to a reshd -insecure)")
	if code, done := Command.Parse(fs, args, stdout, stderr); done {
		return o, code, true
	}
	bad := func(err error) (Options, int, bool) {
		return o, Command.BadUsage(stderr, err), true
	}
	switch {
	case *port < 1 || *port > 65535:
		return bad(usagef("-p: %d is not a port (1 to 65535)", *port))
	case o.Client.Insecure && (o.Client.Identity != "" || o.Client.KnownOnly):
		return bad(usagef("-insecure excludes -i and -known-only"))
	case fs.NArg() == 0:
		return bad(usagef("no HOST given"))
	case fs.NArg() == 1:
		return bad(usagef("no COMMAND given after HOST: one of %s", strings.Join(Commands, ", ")))
	}
	o.Client.Host = strings.TrimSuffix(strings.TrimPrefix(fs.Arg(0), "["), "]")
	o.Client.Port = *port
	o.Client.GiveUp = client.DefaultGiveUp
	if o.Client.Host == "" {
		return bad(usagef("empty HOST"))
	}
	o.Command = fs.Arg(1)
	switch o.Command {
	case "run":
		code, done := parseRun(&o.Run, fs.Args()[2:], stdout, stderr)
		return o, code, done
	}
	return bad(usagef("unknown command %q: reshjob knows %s", o.Command, strings.Join(Commands, ", ")))
}

// parseRun parses run's options and operands into r.
func parseRun(r *RunOptions, args []string, stdout, stderr io.Writer) (code int, done bool) {
	fs := runCommand.FlagSet()
	fs.StringVar(&r.Lang, "lang", "", "the program's language `L` (default: from FILE's extension)")
	wall := fs.String("time", "", "wall-clock time limit `D`, such as 10s or 2m (default: the executor's, 3m)")
	cpu := fs.String("cpu", "", "CPU time limit `D` (default: the executor's)")
	mem := fs.String("mem", "", "memory limit `SIZE` (default: the executor's, 512M)")
	procs := fs.String("procs", "", "limit of processes `N` (default: the executor's, 64)")
	output := fs.String("output", "", "limit of each of stdout and stderr, `SIZE` (default: the executor's, 16M)")
	fs.BoolVar(&r.JSON, "json", false, "print one JSON object on stdout at the end: verdict, status, times, memory, output sizes, executor")
	if code, done := runCommand.Parse(fs, args, stdout, stderr); done {
		return code, true
	}
	err := r.finish(fs, *wall, *cpu, *mem, *procs, *output)
	if err != nil {
		return runCommand.BadUsage(stderr, err), true
	}
	return 0, false
}

// finish checks run's operands and converts the limits.
func (r *RunOptions) finish(fs *flag.FlagSet, wall, cpu, mem, procs, output string) error {
	var err error
	if r.Limits.WallMS, err = parseLimitDuration("-time", wall); err != nil {
		return err
	}
	if r.Limits.CPUMS, err = parseLimitDuration("-cpu", cpu); err != nil {
		return err
	}
	if r.Limits.Memory, err = parseLimitSize("-mem", mem); err != nil {
		return err
	}
	if r.Limits.Output, err = parseLimitSize("-output", output); err != nil {
		return err
	}
	if procs != "" {
		n, err := strconv.Atoi(procs)
		if err != nil || n <= 0 {
			return usagef("-procs must be a positive number, not %q", procs)
		}
		r.Limits.Procs = n
	}
	if fs.NArg() == 0 {
		return usagef("run needs the program's FILE (or - with -lang)")
	}
	r.File, r.Args = fs.Arg(0), fs.Args()[1:]
	if r.Lang != "" {
		return nil
	}
	if r.Stdin() {
		return usagef("- reads the program from stdin: give its language with -lang")
	}
	l, ok := Language(r.File)
	if !ok {
		return usagef("cannot tell the language of %s from its extension: give -lang (%s)", r.File, strings.Join(lang.Builtin().Names(), ", "))
	}
	r.Lang = l
	return nil
}

// Language is the language of the program file name by its extension,
// as the executors' built-in languages have them (package lang).
func Language(name string) (string, bool) {
	l, ok := lang.Builtin().ForFile(name)
	return l.Name, ok
}

// parseLimitDuration parses a time limit given as value of option opt:
// milliseconds, 0 when not given.
func parseLimitDuration(opt, value string) (int64, error) {
	if value == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(value)
	if err != nil || d <= 0 {
		return 0, usagef("%s must be a positive duration such as 10s or 2m, not %q", opt, value)
	}
	if d < time.Millisecond {
		return 0, usagef("%s must be at least 1ms, not %q", opt, value)
	}
	return d.Milliseconds(), nil
}

// parseLimitSize parses a size limit given as value of option opt: 0 when
// not given.
func parseLimitSize(opt, value string) (int64, error) {
	if value == "" {
		return 0, nil
	}
	n, err := cli.ParseSize(value)
	if err != nil {
		return 0, usagef("%s: %v", opt, err)
	}
	return n, nil
}
