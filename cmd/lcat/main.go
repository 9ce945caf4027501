// Command lcat is cat for files on the resh client's machine: run inside a
// resh session, it prints each FILE, read from the client, in order.
//
//	lcat [FILE...]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"resh/cat"
)

const usage = "usage: lcat [FILE...]"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv("RESH_SOCKET"), os.Stdin, os.Stdout, os.Stderr))
}

type options struct {
	files []string
}

func parse(args []string) (options, error) {
	fs := flag.NewFlagSet("lcat", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	return options{files: fs.Args()}, nil
}

// run is lcat with its arguments, RESH_SOCKET and standard streams; it
// returns the exit status.
func run(ctx context.Context, args []string, socket string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := parse(args)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			_, _ = fmt.Fprintf(stderr, "lcat: %v\n", err)
		}
		_, _ = fmt.Fprintln(stderr, usage)
		return 2
	}
	return cat.Remote(ctx, socket, o.files, stdin, stdout, stderr)
}
