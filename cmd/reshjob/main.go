// Command reshjob submits programs to a host running reshd, which
// compiles and runs them in a sandbox with limits and says how they ended:
//
//	reshjob [-p PORT] [-i FILE] [-known-only] [-insecure] HOST run [-lang L] [-time D] [-cpu D] [-mem SIZE] [-procs N] [-output SIZE] [-json] FILE [ARGS...]
//
// run sends FILE (- reads it from stdin, with -lang), runs it with ARGS
// and reshjob's stdin, streams its stdout and stderr live, and exits with
// the program's status (128+N for signal N), or for the verdicts without
// one: 121 COMPILE_ERROR, 122 OUTPUT_LIMIT, 123 MEMORY_LIMIT, 124
// TIME_LIMIT, 125 SANDBOX_ERROR. Any verdict but OK is told in one line
// "reshjob: VERDICT (detail)" on stderr; -json prints one JSON object at
// the end. reshjob exits with 255 for its own failures and 2 for bad
// usage.
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
