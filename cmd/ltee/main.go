// Command ltee is tee for files on the resh client's machine: run inside a
// resh session, it copies its standard input to standard output and to each
// FILE on the client.
//
//	ltee [-a] [FILE...]
package main

import (
	"context"
	"io"
	"os"

	"resh/internal/cli"
	"resh/tee"
)

var command = cli.Command{
	Name:     "ltee",
	Synopsis: "ltee [-a] [FILE...]",
	Summary: "Run inside a resh session, copies standard input to standard output and to each FILE\n" +
		"on the client's machine, like tee. Relative paths are relative to resh's working directory.",
}

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv("RESH_SOCKET"), os.Stdin, os.Stdout, os.Stderr))
}

// run is ltee with its arguments, RESH_SOCKET and standard streams; it
// returns the exit status.
func run(ctx context.Context, args []string, socket string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := command.FlagSet()
	appendMode := fs.Bool("a", false, "append to the files instead of overwriting them")
	if code, done := command.Parse(fs, args, stdout, stderr); done {
		return code
	}
	return tee.Remote(ctx, socket, fs.Args(), *appendMode, stdin, stdout, stderr)
}
