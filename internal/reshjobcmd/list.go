package reshjobcmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"resh/client"
	"resh/internal/cli"
	"resh/proto"
)

// insecureOwner is the owner of the jobs submitted to a master started
// with -insecure (proto/spec.md §8).
const insecureOwner = "insecure"

// jobsQuery sends a query answered by Jobs and returns them, with the
// fingerprint of the key reshjob presented ("insecure" without TLS).
func jobsQuery(ctx context.Context, o *Options, env client.Env, q string, req proto.JobRequest) ([]proto.JobInfo, string, error) {
	s, sent, err := query(ctx, o, env, proto.Hello{Query: q, JobRequest: &req}, nil, nil)
	if err != nil {
		return nil, "", err
	}
	defer s.Close()
	var jobs proto.Jobs
	if err := answer(s, o, sent, answerTimeout(env), proto.TypeJobs, &jobs); err != nil {
		return nil, "", err
	}
	me := s.Fingerprint()
	if me == "" {
		me = insecureOwner
	}
	return jobs.Jobs, me, nil
}

// oneJob is the one job of an answer to QueryJob or QueryCancel.
func oneJob(jobs []proto.JobInfo, id int64) (proto.JobInfo, error) {
	if len(jobs) != 1 || jobs[0].ID != id {
		return proto.JobInfo{}, fmt.Errorf("protocol error: the server answered about %d jobs, not job %d alone", len(jobs), id)
	}
	return jobs[0], nil
}

// list is reshjob HOST ls.
func list(ctx context.Context, o *Options, env client.Env) (int, error) {
	l := &o.List
	req := proto.JobRequest{State: l.State, All: l.All || l.State != ""}
	jobs, me, err := jobsQuery(ctx, o, env, proto.QueryJobs, req)
	if err != nil {
		return 0, err
	}
	if l.JSON {
		if jobs == nil {
			jobs = []proto.JobInfo{}
		}
		return 0, writeJSON(env.Stdout, jobs)
	}
	if err := WriteTable(env.Stdout, jobs, me, time.Now()); err != nil {
		return 0, fmt.Errorf("standard output: %w", err)
	}
	return 0, nil
}

// status is reshjob HOST status.
func status(ctx context.Context, o *Options, env client.Env) (int, error) {
	jobs, _, err := jobsQuery(ctx, o, env, proto.QueryJob, proto.JobRequest{ID: o.ID})
	if err != nil {
		return 0, err
	}
	j, err := oneJob(jobs, o.ID)
	if err != nil {
		return 0, err
	}
	if o.JSON {
		return 0, writeJSON(env.Stdout, j)
	}
	if err := WriteStatus(env.Stdout, j, time.Now()); err != nil {
		return 0, fmt.Errorf("standard output: %w", err)
	}
	return 0, nil
}

// cancel is reshjob HOST cancel.
func cancel(ctx context.Context, o *Options, env client.Env) (int, error) {
	jobs, _, err := jobsQuery(ctx, o, env, proto.QueryCancel, proto.JobRequest{ID: o.ID})
	if err != nil {
		return 0, err
	}
	if _, err := oneJob(jobs, o.ID); err != nil {
		return 0, err
	}
	if _, err := fmt.Fprintf(env.Stdout, "job %d cancelled\n", o.ID); err != nil {
		return 0, fmt.Errorf("standard output: %w", err)
	}
	return 0, nil
}

// writeJSON writes v as one line of JSON.
func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("standard output: %w", err)
	}
	return nil
}

// WriteTable writes ls's table of jobs, in the order given (the server's:
// newest first), aligned, with a header: ID, STATE, LANG, NAME, EXECUTOR,
// SUBMITTED (how long ago, from now), DURATION (so far, for a running
// job), VERDICT; and OWNER after ID when any job is not me's (a key
// fingerprint). Empty cells are "-".
func WriteTable(w io.Writer, jobs []proto.JobInfo, me string, now time.Time) error {
	owners := false
	for _, j := range jobs {
		owners = owners || j.Owner != me
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	header := []string{"ID", "STATE", "LANG", "NAME", "EXECUTOR", "SUBMITTED", "DURATION", "VERDICT"}
	if owners {
		header = append(header[:1], append([]string{"OWNER"}, header[1:]...)...)
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, j := range jobs {
		row := []string{strconv.FormatInt(j.ID, 10), cli.Cell(j.State), cli.Cell(j.Lang), cli.Cell(j.Name), cli.Cell(j.Executor),
			ago(j.Submitted, now), duration(j, now), cli.Cell(j.Verdict)}
		if owners {
			row = append(row[:1], append([]string{cli.Cell(j.Owner)}, row[1:]...)...)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// WriteStatus writes status's lines: each field of the job, "-" when
// empty; times in RFC 3339 as the server gave them.
func WriteStatus(w io.Writer, j proto.JobInfo, now time.Time) error {
	exit := "-"
	switch {
	case j.Exit != nil && j.Exit.Signal > 0:
		exit = fmt.Sprintf("signal %d (%s)", j.Exit.Signal, signalName(j.Exit.Signal))
	case j.Exit != nil:
		exit = fmt.Sprintf("code %d", j.Exit.Code)
	}
	args := make([]string, len(j.Args))
	for i, a := range j.Args {
		args[i] = quoteArg(a)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	for _, f := range [][2]string{
		{"id", strconv.FormatInt(j.ID, 10)},
		{"owner", cli.Cell(j.Owner)},
		{"state", cli.Cell(j.State)},
		{"lang", cli.Cell(j.Lang)},
		{"name", cli.Cell(j.Name)},
		{"args", cli.Cell(strings.Join(args, " "))},
		{"executor", cli.Cell(j.Executor)},
		{"attempts", strconv.Itoa(j.Attempts)},
		{"submitted", cli.Cell(j.Submitted)},
		{"started", cli.Cell(j.Started)},
		{"ended", cli.Cell(j.Ended)},
		{"duration", duration(j, now)},
		{"verdict", cli.Cell(j.Verdict)},
		{"exit", exit},
		{"reason", cli.Cell(j.Reason)},
		{"stdout", fmt.Sprintf("%d bytes", j.StdoutLen)},
		{"stderr", fmt.Sprintf("%d bytes", j.StderrLen)},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", f[0], f[1])
	}
	return tw.Flush()
}

// quoteArg is an argument as a shell would need it: as it is when it is
// plain, else quoted.
func quoteArg(a string) string {
	if a != "" && strings.IndexFunc(a, func(c rune) bool {
		return !(unicode.IsLetter(c) || unicode.IsDigit(c) || strings.ContainsRune("-_./=:,+@%", c))
	}) < 0 {
		return a
	}
	return strconv.Quote(a)
}

// ago is how long before now the RFC 3339 time t was: "42s", "3m12s",
// "2h5m", "3d4h"; "-" for no time, t itself for one that does not parse.
func ago(t string, now time.Time) string {
	if t == "" {
		return "-"
	}
	at, err := time.Parse(time.RFC3339Nano, t)
	if err != nil {
		return cli.Cell(t)
	}
	return age(now.Sub(at))
}

// duration is how long job j ran: its duration once ended, the time
// since it started while it runs, "-" before.
func duration(j proto.JobInfo, now time.Time) string {
	if j.DurationMS > 0 {
		return age(time.Duration(j.DurationMS) * time.Millisecond)
	}
	if j.Started == "" || j.Ended != "" {
		return "-"
	}
	at, err := time.Parse(time.RFC3339Nano, j.Started)
	if err != nil {
		return "-"
	}
	return age(now.Sub(at))
}

// age writes d as cli.Age does, with a tenth of a second under 10 s and
// milliseconds under 1 s (jobs are often that short).
func age(d time.Duration) string {
	if d >= 0 && d < time.Second {
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	}
	if d >= 0 && d < 10*time.Second {
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	}
	return cli.Age(d)
}
