package reshjobcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/term"

	"resh/client"
	"resh/proto"
)

// MaxStdin bounds the stdin stored with a job (proto.MaxJobStdin): reshjob
// reads no more.
const MaxStdin = proto.MaxJobStdin

// newJob reads the program and its stdin, and returns the job to submit
// with its source and stdin: the stdin is reshjob's, read to its end,
// unless it is a terminal (then none) or the source came from it.
func newJob(r *RunOptions, stdin io.Reader) (*proto.Job, []byte, []byte, error) {
	src, err := readSource(r, stdin)
	if err != nil {
		return nil, nil, nil, err
	}
	name := ""
	var in []byte
	if !r.Stdin() {
		name = filepath.Base(r.File)
		if in, err = readStdin(stdin); err != nil {
			return nil, nil, nil, err
		}
	}
	job := &proto.Job{Lang: r.Lang, Name: name, Size: int64(len(src)), Args: r.Args, Limits: r.Limits}
	return job, src, in, nil
}

// readStdin reads the job's stdin to its end, at most MaxStdin bytes;
// nothing from a terminal.
func readStdin(stdin io.Reader) ([]byte, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return []byte{}, nil
	}
	in, err := io.ReadAll(io.LimitReader(stdin, MaxStdin+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read the program's stdin: %w", err)
	}
	if len(in) > MaxStdin {
		return nil, fmt.Errorf("the program's stdin is larger than %d MiB, the most a job keeps: give it as a file in the program, or less input", MaxStdin>>20)
	}
	return in, nil
}

// submit is reshjob HOST submit: it prints the id of the stored job.
func submit(ctx context.Context, o *Options, env client.Env) (int, error) {
	job, src, in, err := newJob(&o.Run, env.Stdin)
	if err != nil {
		return 0, err
	}
	s, sent, err := query(ctx, o, env, proto.Hello{Query: proto.QuerySubmit, Job: job}, src, in)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	var sub proto.Submitted
	if err := answer(s, o, sent, answerTimeout(env), proto.TypeSubmitted, &sub); err != nil {
		if errors.As(err, new(unanswered)) {
			err = fmt.Errorf("%w; the job may have been stored: see reshjob %s ls", err, o.Client.Host)
		}
		return 0, err
	}
	if _, err := fmt.Fprintln(env.Stdout, sub.ID); err != nil {
		return 0, fmt.Errorf("standard output: %w", err)
	}
	return 0, nil
}
