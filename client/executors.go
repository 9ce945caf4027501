package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"resh/internal/cli"
	"resh/proto"
)

// listExecutors prints reshd's table of executors on stdout (-executors).
func (r *runner) listExecutors(ctx context.Context) (int, error) {
	list, err := r.queryExecutors(ctx)
	if err != nil {
		return 0, err
	}
	if err := writeExecutors(r.env.Stdout, list, time.Now()); err != nil {
		return 0, fmt.Errorf("standard output: %w", err)
	}
	return 0, nil
}

// queryExecutors asks reshd for its executors: a session whose Hello
// carries Query "executors" and no command, answered by Executors or an
// Error, after which the server closes it (../proto/spec.md §5).
func (r *runner) queryExecutors(ctx context.Context) ([]proto.ExecutorInfo, error) {
	_, stderrTerm := terminalFD(r.env.Stderr)
	sess, conn, err := r.connect(ctx, stderrTerm)
	if err != nil {
		return nil, err
	}
	defer r.closeSession(sess, conn)
	st, err := r.openStreams(sess)
	if err != nil {
		return nil, err
	}
	r.control = st.control
	hello := proto.Hello{Version: proto.Version, User: r.o.User, Query: proto.QueryExecutors}
	if err := r.send(proto.TypeHello, hello); err != nil {
		return nil, r.lost(err)
	}
	r.debugf(2, "asked for the executors")
	timeout := r.startTimeout()
	_ = st.control.SetReadDeadline(time.Now().Add(timeout))
	t, body, err := proto.ReadMessage(st.control)
	if err != nil {
		return nil, r.startError(err, timeout, "it listed the executors")
	}
	switch t {
	case proto.TypeExecutors:
		var ex proto.Executors
		if err := proto.Decode(body, &ex); err != nil {
			return nil, fmt.Errorf("protocol error: %w", err)
		}
		return ex.Executors, nil
	case proto.TypeError:
		var e proto.Error
		if err := proto.Decode(body, &e); err != nil {
			return nil, fmt.Errorf("protocol error: %w", err)
		}
		return nil, errors.New(e.Message)
	case proto.TypeStarted:
		// A reshd older than Hello's query ignores it and starts a
		// shell, which the end of the session hangs up.
		return nil, fmt.Errorf("reshd at %s cannot list executors: it is older than masters and executors", r.o.Addr())
	}
	return nil, fmt.Errorf("protocol error: %w: got type %d, want %d", proto.ErrUnexpected, t, proto.TypeExecutors)
}

// writeExecutors writes the table of executors, aligned, with a header:
// NAME, ADDRESS, STATE, TASKS (running/max, "-" for no maximum), CPU,
// LANGUAGES, VERSION, SINCE (how long ago each joined, from now).
func writeExecutors(w io.Writer, list []proto.ExecutorInfo, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDRESS\tSTATE\tTASKS\tCPU\tLANGUAGES\tVERSION\tSINCE")
	for _, e := range list {
		limit := "-"
		if e.MaxTasks > 0 {
			limit = fmt.Sprint(e.MaxTasks)
		}
		since := "-"
		if !e.Since.IsZero() {
			since = cli.Age(now.Sub(e.Since))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%s\t%.0f%%\t%s\t%s\t%s\n", cli.Cell(e.Name), cli.Cell(e.Addr), cli.Cell(e.State),
			e.Tasks, limit, e.CPU, cli.Cell(strings.Join(e.Languages, ",")), cli.Cell(e.Version), since)
	}
	return tw.Flush()
}
