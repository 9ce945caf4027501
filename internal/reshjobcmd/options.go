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
	Synopsis: "reshjob [-p PORT] [-i FILE] [-known-only] [-insecure] [-give-up D] [-v] HOST COMMAND [ARGS...]\n" +
		"       reshjob [options] HOST run|submit [-lang L] [-time D] [-cpu D] [-mem SIZE] [-procs N] [-output SIZE] [-json] FILE [ARGS...]\n" +
		"       reshjob [options] HOST attach [-from N[:M]] [-json] ID\n" +
		"       reshjob [options] HOST ls [-all] [-state S] [-json]\n" +
		"       reshjob [options] HOST status [-json] ID\n" +
		"       reshjob [options] HOST cancel ID",
	Summary: "Submits programs to HOST (a reshd, or a master that places them on executors with\n" +
		"their language) as durable jobs, kept with their output until they end and after.\n" +
		"submit stores FILE with ARGS and reshjob's stdin (unless a terminal) and prints the\n" +
		"job's id; attach streams a job's stdout and stderr, live, and exits as the program\n" +
		"did; run is submit then attach, and attaches again if the connection is lost; ls\n" +
		"lists jobs, status shows one, cancel cancels one. run and attach exit with the\n" +
		"program's status (128+N for signal N), or for a verdict without one: 119 CANCELLED,\n" +
		"120 EXECUTOR_LOST, 121 COMPILE_ERROR, 122 OUTPUT_LIMIT, 123 MEMORY_LIMIT,\n" +
		"124 TIME_LIMIT, 125 SANDBOX_ERROR; 255 for reshjob's own failures. Keys and\n" +
		"known_hosts are resh's, in RESH_HOME (default ~/.resh).\n" +
		"Commands: " + strings.Join(Commands, ", ") + " (reshjob HOST COMMAND -h describes its options).",
}

// runCommand is run's command line, for reshjob HOST run -h.
var runCommand = cli.Command{
	Name:     "reshjob",
	Synopsis: "reshjob [options] HOST run [-lang L] [-time D] [-cpu D] [-mem SIZE] [-procs N] [-output SIZE] [-json] FILE [ARGS...]",
	Summary: "Submits FILE as a job (- reads it from stdin, with -lang; the program's stdin is\n" +
		"then empty), with ARGS and reshjob's stdin read to its end (none from a terminal),\n" +
		"streams the job's stdout and stderr, and exits as the program did. ^C cancels the\n" +
		"job. If the connection is lost for good, reshjob attaches again from where it was;\n" +
		"if it cannot, it says how to (reshjob HOST attach -from OUT:ERR ID) and exits 255.\n" +
		"The language comes from FILE's extension: .py python, .java java, .c c, .cpp and\n" +
		".cc c++, .sh sh. Limits left out take the executor's defaults; each is capped by\n" +
		"its ceilings. SIZE is bytes, or a number with K, M or G (powers of 1024): 512M, 1G.",
}

// submitCommand is submit's command line.
var submitCommand = cli.Command{
	Name:     "reshjob",
	Synopsis: "reshjob [options] HOST submit [-lang L] [-time D] [-cpu D] [-mem SIZE] [-procs N] [-output SIZE] FILE [ARGS...]",
	Summary: "Submits FILE as a job, as run does, and prints its id once HOST has stored it;\n" +
		"reshjob HOST attach ID follows it.",
}

// attachCommand is attach's command line.
var attachCommand = cli.Command{
	Name:     "reshjob",
	Synopsis: "reshjob [options] HOST attach [-from N[:M]] [-json] ID",
	Summary: "Streams job ID's stdout and stderr, from their start or from byte N of stdout and\n" +
		"M of stderr (N alone: both), live until it ends, and exits as run does.",
}

// lsCommand is ls's command line.
var lsCommand = cli.Command{
	Name:     "reshjob",
	Synopsis: "reshjob [options] HOST ls [-all] [-state S] [-json]",
	Summary: "Lists your jobs that are queued or running (every job for HOST's own keys),\n" +
		"newest first.",
}

// statusCommand is status's command line.
var statusCommand = cli.Command{
	Name:     "reshjob",
	Synopsis: "reshjob [options] HOST status [-json] ID",
	Summary:  "Shows job ID: its state, where and how long it ran, how it ended.",
}

// cancelCommand is cancel's command line.
var cancelCommand = cli.Command{
	Name:     "reshjob",
	Synopsis: "reshjob [options] HOST cancel ID",
	Summary:  "Cancels job ID: a queued job at once, a running one is killed first.",
}

// Commands are the commands reshjob knows.
var Commands = []string{"run", "submit", "attach", "ls", "status", "cancel"}

// States are the states of a job (proto.JobInfo), for ls -state.
var States = []string{"queued", "running", "finished", "cancelled", "failed"}

// Options are reshjob's parsed command line.
type Options struct {
	// Client holds the host and how to reach it: -p, -i, -known-only,
	// -insecure, as resh's.
	Client client.Options
	// Verbose (-v) tells each change of an attached job's state.
	Verbose bool
	// Command is the command after HOST: one of Commands.
	Command string
	// Run holds the options and operands of run and submit.
	Run RunOptions
	// Attach holds attach's.
	Attach AttachOptions
	// List holds ls's.
	List ListOptions
	// ID is the job of status and cancel.
	ID int64
	// JSON (status -json) prints the job as JSON.
	JSON bool
}

// RunOptions are the options and operands of reshjob HOST run and submit.
type RunOptions struct {
	Lang   string          // -lang, else from File's extension
	File   string          // the program's file, "-" for stdin
	Args   []string        // the program's arguments
	Limits proto.JobLimits // -time, -cpu, -mem, -procs, -output
	JSON   bool            // -json: one JSON object on stdout at the end
}

// Stdin reports whether the program's source is read from stdin.
func (r *RunOptions) Stdin() bool { return r.File == "-" }

// AttachOptions are the options and operands of reshjob HOST attach.
type AttachOptions struct {
	ID   int64
	From Offsets // -from
	JSON bool    // -json, as run's
}

// ListOptions are the options of reshjob HOST ls.
type ListOptions struct {
	All   bool   // -all: ended jobs too
	State string // -state: only jobs in that state
	JSON  bool   // -json: the jobs as a JSON array
}

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
	fs.DurationVar(&o.Client.GiveUp, "give-up", client.DefaultGiveUp, "how long to keep reconnecting to a reshd that refuses the connection, `D`, before run or attach gives up (then it says how to attach again)")
	fs.BoolVar(&o.Verbose, "v", false, "tell each change of the job's state on stderr (queued, running on an executor)")
	if code, done := Command.Parse(fs, args, stdout, stderr); done {
		return o, code, true
	}
	bad := func(err error) (Options, int, bool) {
		return o, Command.BadUsage(stderr, err), true
	}
	switch {
	case *port < 1 || *port > 65535:
		return bad(usagef("-p: %d is not a port (1 to 65535)", *port))
	case o.Client.GiveUp <= 0:
		return bad(usagef("-give-up must be a positive duration such as 30s or 5m"))
	case o.Client.Insecure && (o.Client.Identity != "" || o.Client.KnownOnly):
		return bad(usagef("-insecure excludes -i and -known-only"))
	case fs.NArg() == 0:
		return bad(usagef("no HOST given"))
	case fs.NArg() == 1:
		return bad(usagef("no COMMAND given after HOST: one of %s", strings.Join(Commands, ", ")))
	}
	o.Client.Host = strings.TrimSuffix(strings.TrimPrefix(fs.Arg(0), "["), "]")
	o.Client.Port = *port
	if o.Client.Host == "" {
		return bad(usagef("empty HOST"))
	}
	o.Command = fs.Arg(1)
	rest := fs.Args()[2:]
	switch o.Command {
	case "run":
		code, done = parseRun(&runCommand, "run", &o.Run, true, rest, stdout, stderr)
	case "submit":
		code, done = parseRun(&submitCommand, "submit", &o.Run, false, rest, stdout, stderr)
	case "attach":
		code, done = parseAttach(&o.Attach, rest, stdout, stderr)
	case "ls":
		code, done = parseList(&o.List, rest, stdout, stderr)
	case "status":
		fs := statusCommand.FlagSet()
		fs.BoolVar(&o.JSON, "json", false, "print the job as one JSON object")
		code, done = parseID(&statusCommand, fs, &o.ID, rest, stdout, stderr)
	case "cancel":
		code, done = parseID(&cancelCommand, cancelCommand.FlagSet(), &o.ID, rest, stdout, stderr)
	default:
		return bad(usagef("unknown command %q: reshjob knows %s", o.Command, strings.Join(Commands, ", ")))
	}
	return o, code, done
}

// parseRun parses the options and operands of run (withJSON) or submit
// into r.
func parseRun(c *cli.Command, name string, r *RunOptions, withJSON bool, args []string, stdout, stderr io.Writer) (code int, done bool) {
	fs := c.FlagSet()
	fs.StringVar(&r.Lang, "lang", "", "the program's language `L` (default: from FILE's extension)")
	wall := fs.String("time", "", "wall-clock time limit `D`, such as 10s or 2m (default: the executor's, 3m)")
	cpu := fs.String("cpu", "", "CPU time limit `D` (default: the executor's)")
	mem := fs.String("mem", "", "memory limit `SIZE` (default: the executor's, 512M)")
	procs := fs.String("procs", "", "limit of processes `N` (default: the executor's, 64)")
	output := fs.String("output", "", "limit of each of stdout and stderr, `SIZE` (default: the executor's, 16M)")
	if withJSON {
		fs.BoolVar(&r.JSON, "json", false, "print one JSON object on stdout at the end: verdict, status, times, memory, output sizes, executor")
	}
	if code, done := c.Parse(fs, args, stdout, stderr); done {
		return code, true
	}
	if err := r.finish(fs, name, *wall, *cpu, *mem, *procs, *output); err != nil {
		return c.BadUsage(stderr, err), true
	}
	return 0, false
}

// parseAttach parses attach's options and operand into a.
func parseAttach(a *AttachOptions, args []string, stdout, stderr io.Writer) (code int, done bool) {
	fs := attachCommand.FlagSet()
	from := fs.String("from", "", "start at byte `N[:M]` of stdout (N) and of stderr (M; default N)")
	fs.BoolVar(&a.JSON, "json", false, "print one JSON object on stdout at the end, as run -json")
	if code, done := parseID(&attachCommand, fs, &a.ID, args, stdout, stderr); done {
		return code, true
	}
	var err error
	if a.From, err = ParseFrom(*from); err != nil {
		return attachCommand.BadUsage(stderr, err), true
	}
	return 0, false
}

// parseList parses ls's options into l.
func parseList(l *ListOptions, args []string, stdout, stderr io.Writer) (code int, done bool) {
	fs := lsCommand.FlagSet()
	fs.BoolVar(&l.All, "all", false, "list the jobs that ended too")
	fs.StringVar(&l.State, "state", "", "list only the jobs in state `S`: "+strings.Join(States, ", "))
	fs.BoolVar(&l.JSON, "json", false, "print the jobs as one JSON array")
	if code, done := lsCommand.Parse(fs, args, stdout, stderr); done {
		return code, true
	}
	switch {
	case fs.NArg() > 0:
		return lsCommand.BadUsage(stderr, usagef("ls takes no operand, not %q", fs.Arg(0))), true
	case l.State != "" && !contains(States, l.State):
		return lsCommand.BadUsage(stderr, usagef("-state: %q is not a state: one of %s", l.State, strings.Join(States, ", "))), true
	}
	return 0, false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// parseID parses fs's options and the one operand, a job's id, into id.
func parseID(c *cli.Command, fs *flag.FlagSet, id *int64, args []string, stdout, stderr io.Writer) (code int, done bool) {
	if code, done := c.Parse(fs, args, stdout, stderr); done {
		return code, true
	}
	var err error
	switch {
	case fs.NArg() == 0:
		err = usagef("no job ID given")
	case fs.NArg() > 1:
		err = usagef("one job ID only, not %s", strings.Join(fs.Args(), " "))
	default:
		*id, err = ParseID(fs.Arg(0))
	}
	if err != nil {
		return c.BadUsage(stderr, err), true
	}
	return 0, false
}

// ParseID parses a job's id: a positive number.
func ParseID(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, usagef("%q is not a job ID (a positive number)", s)
	}
	return n, nil
}

// finish checks run's operands and converts the limits.
func (r *RunOptions) finish(fs *flag.FlagSet, name, wall, cpu, mem, procs, output string) error {
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
		return usagef("%s needs the program's FILE (or - with -lang)", name)
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
