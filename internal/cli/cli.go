// Package cli is the command-line convention every resh binary follows:
// -h and --help print the usage with each flag described on stdout and exit
// 0; --version prints the version and the commit and exits 0; bad usage
// prints one line saying what is wrong, then the synopsis, on stderr and
// exits 2.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"resh/internal/version"
)

// ExitUsage is the exit status for bad usage, as for ssh and the shells.
const ExitUsage = 2

// Command describes a program's command line.
type Command struct {
	// Name is the program's name, e.g. "reshd".
	Name string
	// Synopsis is the usage line(s) without "usage: ", e.g.
	// "reshd [-listen ADDR] [-insecure]".
	Synopsis string
	// Summary is a paragraph printed by -h between the synopsis and the
	// flags; optional.
	Summary string
}

// FlagSet returns a flag set for c that reports errors to its caller and
// prints nothing itself, with --version (also spelt -version) defined.
func (c *Command) FlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Bool("version", false, "print the version and the commit, then exit")
	return fs
}

// Parse parses args with fs, made by FlagSet. When done is true the
// program should exit with code at once: 0 after -h, --help or --version
// (their text went to stdout), 2 after bad usage (the error line and the
// synopsis went to stderr).
func (c *Command) Parse(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, done bool) {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		c.Help(stdout, fs)
		return 0, true
	}
	if err != nil {
		return c.BadUsage(stderr, err), true
	}
	if v := fs.Lookup("version"); v != nil && v.Value.String() == "true" {
		_, _ = fmt.Fprintln(stdout, version.String(c.Name))
		return 0, true
	}
	return 0, false
}

// Help writes the -h text to w: the synopsis, the summary and each flag
// with its description and default.
func (c *Command) Help(w io.Writer, fs *flag.FlagSet) {
	var b strings.Builder
	b.WriteString(c.usageLine())
	if c.Summary != "" {
		b.WriteString("\n" + strings.TrimRight(c.Summary, "\n") + "\n")
	}
	b.WriteString("\nOptions:\n")
	out := fs.Output()
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(out)
	b.WriteString("  -h, --help\n    \tprint this help, then exit\n")
	// PrintDefaults spells the version flag -version; --version reads better.
	_, _ = io.WriteString(w, strings.Replace(b.String(), "\n  -version\n", "\n  --version\n", 1))
}

// BadUsage writes "NAME: err" and the synopsis to stderr and returns 2.
func (c *Command) BadUsage(stderr io.Writer, err error) int {
	msg := strings.TrimPrefix(err.Error(), "flag: ")
	_, _ = fmt.Fprintf(stderr, "%s: %s\n%s", c.Name, msg, c.usageLine())
	return ExitUsage
}

// usageLine is "usage: SYNOPSIS\n" plus a pointer to -h.
func (c *Command) usageLine() string {
	return "usage: " + c.Synopsis + "\n"
}

// Cell is s for a table cell: "-" when empty, control characters (tabs,
// newlines, escapes from a hostile server) replaced by "?".
func Cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(c rune) rune {
		if unicode.IsControl(c) {
			return '?'
		}
		return c
	}, s)
}

// Age writes a duration (how long ago, how long it took) in its two
// largest units, cut down: "42s", "3m12s", "2h5m", "3d4h"; a negative one
// is 0s.
func Age(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", d/time.Second)
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", d/time.Minute, d%time.Minute/time.Second)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", d/time.Hour, d%time.Hour/time.Minute)
	}
	return fmt.Sprintf("%dd%dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
}
