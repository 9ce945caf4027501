// Command resh runs a command, or an interactive shell, on a host running
// reshd, over a connection that survives network outages:
//
//	resh [-46nqTtVv] [-p PORT] [-l USER] [-i FILE] [-F FILE] [-o KEY=VALUE]... [-allow PATH]... [-no-files] [-known-only] [-insecure] [-give-up DURATION] [-on NAME | -all | -executors] [USER@]HOST[:PORT] [--] [COMMAND [ARG...]]
//
// Through a master reshd (reshd -master), -on NAME runs the command on the
// executor NAME, -all on every executor at once (each output line prefixed
// with its name), and -executors lists the executors.
//
// Options may come before and after HOST until the command starts, as
// ssh's; HOST may be an alias from ~/.ssh/config (resh -h lists them).
//
// The session runs over TLS 1.3. resh presents the ed25519 identity
// RESH_HOME/id_ed25519 (RESH_HOME defaults to ~/.resh; the key is created on
// first use), or the OpenSSH key -i FILE. It records the server's host key
// in RESH_HOME/known_hosts at first contact and refuses a server whose key
// changed; -known-only refuses a server not recorded yet. -insecure speaks
// plain TCP to a reshd -insecure.
//
// When the connection is lost resh reconnects and resumes the session for
// as long as reshd keeps it (10 minutes by default), unless reshd refuses
// the connection for -give-up (default 30s): reshd is gone, and resh ends
// with 255 saying so (on a terminal it says from the first refusal that it
// retries).
//
// Inside the session, lcat and ltee read and write the client's files under
// the working directory of resh and each -allow directory. resh exits with
// the command's status, 128+N if signal N killed it, 255 for its own
// failures (refused key, changed or unknown host key included), 141 (as a
// death by SIGPIPE) when the reader of its stdout or stderr went away (the
// command's writes to that output then fail too, as through a local pipe),
// and 2 for bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"resh/client"
	"resh/internal/version"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	opts, err := client.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stdout, "%s\n\n%s\n", client.Usage, client.Help)
		return 0
	}
	if errors.Is(err, client.ErrVersion) {
		fmt.Fprintln(stdout, version.String("resh"))
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "resh: %v\n%s\n", err, client.Usage)
		return 2
	}
	return client.Run(context.Background(), opts, client.Env{Stdin: stdin, Stdout: stdout, Stderr: stderr})
}
