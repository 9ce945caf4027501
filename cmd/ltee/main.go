// Command ltee is tee for files on the resh client's machine: run inside a
// resh session, it copies its standard input to standard output and to each
// FILE on the client.
//
//	ltee [-a] [FILE...]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"resh/tee"
)

const usage = "usage: ltee [-a] [FILE...]"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv("RESH_SOCKET"), os.Stdin, os.Stdout, os.Stderr))
}

type options struct {
	appendMode bool
	files      []string
}

func parse(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("ltee", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&o.appendMode, "a", false, "append to the files instead of overwriting them")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.files = fs.Args()
	return o, nil
}

// run is ltee with its arguments, RESH_SOCKET and standard streams; it
// returns the exit status.
func run(ctx context.Context, args []string, socket string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := parse(args)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			_, _ = fmt.Fprintf(stderr, "ltee: %v\n", err)
		}
		_, _ = fmt.Fprintln(stderr, usage)
		return 2
	}
	return tee.Remote(ctx, socket, o.files, o.appendMode, stdin, stdout, stderr)
}
