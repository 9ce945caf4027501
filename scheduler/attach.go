package scheduler

import (
	"context"
	"fmt"

	"resh/proto"
	"resh/store"
)

// Sink is where Attach writes a job: its state, its output, its end.
// An error from any method ends Attach with it.
type Sink interface {
	// State tells where the job is (queued, or running on an executor).
	State(proto.JobState) error
	// Output writes the next bytes of stream s.
	Output(s store.Stream, data []byte) error
	// End gives the job's verdict and exit, after all its output.
	End(v proto.Verdict, e proto.Exit) error
}

// Attach writes owner's job id to sink (AnyOwner: any job): JobState at
// once unless the job has ended and at each change, its stdout from byte
// stdout on and its stderr from byte stderr on as they are stored, live,
// and once the job has ended and both streams are written to their end,
// its verdict and exit. An attempt lost with its executor starts again
// from byte 0 of both streams (its output was discarded), after JobState
// queued then running. Attach returns nil after End, ErrNoJob, the sink's
// error or ctx's.
func (s *Scheduler) Attach(ctx context.Context, owner string, id, stdout, stderr int64, sink Sink) error {
	if stdout < 0 || stderr < 0 {
		return fmt.Errorf("%w: negative offsets (%d, %d)", ErrBadRequest, stdout, stderr)
	}
	changed, stop := s.st.Watch(id)
	defer stop()
	off := [3]int64{0, stdout, stderr}
	var (
		sent     bool // a JobState was sent
		last     proto.JobState
		attempts = -1 // the job's attempts when last seen, -1 before
	)
next:
	for {
		j, err := s.get(ctx, owner, id)
		if err != nil {
			return err
		}
		if attempts >= 0 && j.Attempts != attempts {
			// Claimed again since: the attempt streamed so far was lost,
			// its output discarded, and the new one's starts at 0 (even
			// if it has ended already). A job failed for good after a
			// loss keeps its attempts, and its output.
			off = [3]int64{0, 0, 0}
			if last.State != string(store.Queued) {
				last = proto.JobState{State: string(store.Queued)}
				if err := sink.State(last); err != nil {
					return err
				}
			}
		}
		attempts = j.Attempts
		running := j.State == store.Running
		if !j.State.Ended() {
			// A job claimed but not placed yet is still queued to the client.
			st := proto.JobState{State: string(store.Queued)}
			if running && j.Executor != "" {
				st = proto.JobState{State: string(store.Running), Executor: j.Executor, Attempt: j.Attempts}
			}
			if !sent || st != last {
				if err := sink.State(st); err != nil {
					return err
				}
				sent, last = true, st
			}
		}
		for _, stream := range []store.Stream{store.Stdout, store.Stderr} {
			for {
				data, _, lease, err := s.st.ReadOutput(ctx, id, stream, off[stream], 0)
				if err != nil {
					return fmt.Errorf("reshd: cannot read job %d's output: %w", id, err)
				}
				if len(data) == 0 {
					break
				}
				if lease != j.Lease {
					// Bytes of an attempt that took the place of the one
					// j shows: look at the job again (a new attempt
					// resets the offsets).
					continue next
				}
				if err := sink.Output(stream, data); err != nil {
					return err
				}
				off[stream] += int64(len(data))
			}
		}
		if j.State.Ended() && off[store.Stdout] >= j.StdoutLen && off[store.Stderr] >= j.StderrLen {
			v, e := verdictOf(j)
			return sink.End(v, e)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
