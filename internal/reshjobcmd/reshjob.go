// Package reshjobcmd is the reshjob program: its command line and its
// commands over the durable jobs of reshd (../../proto/spec.md §8):
// submit stores a program as a job, attach follows one to its end and
// exits as it did, run is both in one session, ls, status and cancel
// look at jobs and cancel them. cmd/reshjob only calls Main.
//
// It is a package of its own, as reshdcmd is, rather than a job library:
// what is reusable about talking to reshd (dialling with resh's keys and
// host pinning, reconnecting, the streams, a master's queue) is package
// client's, reached through client.Open; what is left here is about being
// a program (flags, files, stdin, exit statuses, the verdict line, -json)
// and about jobs (attaching again from the bytes written when a session
// is lost for good: attach.go; the tables: list.go).
package reshjobcmd

import (
	"context"
	"fmt"
	"io"
	"os"

	"resh/client"
)

// ExitFailure is reshjob's exit status for its own failures (cannot
// connect, refused, protocol error, session lost, an Error from the
// server), as resh's.
const ExitFailure = client.ExitFailure

// Main is reshjob's main with os.Args; it returns the exit status.
func Main(args []string) int {
	return Run(context.Background(), args[1:], client.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
}

// Run runs reshjob with args (without the program name) in env (whose
// zero fields take the process's own) and returns its exit status.
func Run(ctx context.Context, args []string, env client.Env) int {
	if env.Stdin == nil {
		env.Stdin = os.Stdin
	}
	if env.Stdout == nil {
		env.Stdout = os.Stdout
	}
	if env.Stderr == nil {
		env.Stderr = os.Stderr
	}
	o, code, done := Parse(args, env.Stdout, env.Stderr)
	if done {
		return code
	}
	commands := map[string]func(context.Context, *Options, client.Env) (int, error){
		"run": run, "submit": submit, "attach": attach, "ls": list, "status": status, "cancel": cancel,
	}
	do, ok := commands[o.Command]
	if !ok {
		return ExitFailure // Parse knows no other command
	}
	code, err := do(ctx, &o, env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "reshjob: %v\n", err)
		return ExitFailure
	}
	return code
}

// MaxSource bounds a program's source: reshd refuses a longer one
// (job.MaxSource, which a test keeps equal), so reshjob neither reads nor
// sends it.
const MaxSource = 16 << 20

// readSource reads the program: the file, or stdin for "-"; at most
// MaxSource bytes.
func readSource(r *RunOptions, stdin io.Reader) ([]byte, error) {
	what := "the program from stdin"
	if !r.Stdin() {
		what = r.File
		f, err := os.Open(r.File)
		if err != nil {
			return nil, fmt.Errorf("cannot read the program: %w", err)
		}
		defer f.Close()
		stdin = f
	}
	src, err := io.ReadAll(io.LimitReader(stdin, MaxSource+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", what, err)
	}
	if len(src) > MaxSource {
		return nil, fmt.Errorf("%s is larger than %d MiB, the most a program may be", what, MaxSource>>20)
	}
	return src, nil
}
