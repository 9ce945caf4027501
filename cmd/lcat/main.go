// Command lcat is cat for files on the resh client's machine: run inside a
// resh session, it prints each FILE, read from the client, in order.
//
//	lcat [FILE...]
package main

import (
	"context"
	"io"
	"os"

	"resh/cat"
	"resh/internal/cli"
)

var command = cli.Command{
	Name:     "lcat",
	Synopsis: "lcat [FILE...]",
	Summary: "Run inside a resh session, prints each FILE of the client's machine, in order, like cat\n" +
		"(\"-\" or no FILE: standard input). Relative paths are relative to resh's working directory.",
}

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv("RESH_SOCKET"), os.Stdin, os.Stdout, os.Stderr))
}

// run is lcat with its arguments, RESH_SOCKET and standard streams; it
// returns the exit status.
func run(ctx context.Context, args []string, socket string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := command.FlagSet()
	if code, done := command.Parse(fs, args, stdout, stderr); done {
		return code
	}
	return cat.Remote(ctx, socket, fs.Args(), stdin, stdout, stderr)
}
