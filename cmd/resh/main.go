// Command resh runs a command, or an interactive shell, on a host running
// reshd, over a connection that survives network outages:
//
//	resh [-p PORT] [-t | -T] [-allow DIR]... HOST[:PORT] [COMMAND [ARG...]]
//
// Inside the session, lcat and ltee read and write the client's files under
// the working directory of resh and each -allow directory. resh exits with
// the command's status, 128+N if signal N killed it, 255 for its own
// failures, and 2 for bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"resh/client"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	opts, err := client.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stdout, client.Usage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "resh: %v\n%s\n", err, client.Usage)
		return 2
	}
	return client.Run(context.Background(), opts, client.Env{Stdin: stdin, Stdout: stdout, Stderr: stderr})
}
