// Command reshjob submits programs to a host running reshd as durable
// jobs, which reshd compiles and runs in a sandbox with limits, keeps with
// their output, and tells how they ended:
//
//	reshjob [-p PORT] [-i FILE] [-known-only] [-insecure] [-give-up D] [-v] HOST COMMAND ...
//	reshjob [options] HOST run|submit [-lang L] [-time D] [-cpu D] [-mem SIZE] [-procs N] [-output SIZE] [-json] FILE [ARGS...]
//	reshjob [options] HOST attach [-from N[:M]] [-json] ID
//	reshjob [options] HOST ls [-all] [-state S] [-json]
//	reshjob [options] HOST status [-json] ID
//	reshjob [options] HOST cancel ID
//
// submit stores FILE (- reads it from stdin, with -lang) with ARGS and
// reshjob's stdin (unless a terminal) as a job and prints its id; attach
// streams a job's stdout and stderr live and exits as the program did;
// run is both in one session, and attaches again from the bytes it wrote
// when the connection is lost for good. They exit with the program's
// status (128+N for signal N), or for the verdicts without one: 119
// CANCELLED, 120 EXECUTOR_LOST, 121 COMPILE_ERROR, 122 OUTPUT_LIMIT, 123
// MEMORY_LIMIT, 124 TIME_LIMIT, 125 SANDBOX_ERROR. Any verdict but OK is
// told in one line "reshjob: VERDICT (detail)" on stderr; -json prints one
// JSON object at the end. ls lists jobs, status shows one, cancel cancels
// one. reshjob exits with 255 for its own failures and 2 for bad usage.
//
// It dials as resh does: the same identity (RESH_HOME/id_ed25519 or -i),
// the same known_hosts pinning, -insecure to a reshd -insecure. The
// program is package resh/internal/reshjobcmd.
package main

import (
	"os"

	"resh/internal/reshjobcmd"
)

func main() { os.Exit(reshjobcmd.Main(os.Args)) }
