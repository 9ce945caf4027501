package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/yamux"

	"resh/cluster"
	"resh/job"
	"resh/jobhost"
	"resh/proto"
)

// jobReadPerMiB is how much longer the source and stdin after a JobRun
// may take to come, per MiB, beyond offerTimeout.
const jobReadPerMiB = time.Second

// jobStream serves a stream the master opened with a job's message
// (cluster/spec.md §8), ty and body: JobRun (refused, or accepted and run
// by e.jobs, then followed), JobResume (a held job followed from its
// offsets, or refused as unknown) or JobDrop. A malformed stream is closed
// with a log line. It returns once the stream is over: the job released,
// the stream closed by the master, or the link lost; the job itself lives
// on in e.jobs.
func (e *executor) jobStream(st *yamux.Stream, ty proto.Type, body []byte) {
	log := e.log.With("master", e.cfg.Master)
	bad := func(err error) {
		log.Warn("reshd: malformed job stream from the master: closed", "err", err)
		_ = st.Close()
	}
	refuse := func(r cluster.Refuse, id int64) {
		log.Info("reshd: refused a job: "+r.Message, "job", id, "reason", r.Reason)
		_ = proto.WriteMessage(st, cluster.TypeRefuse, r)
		_ = st.Close()
	}
	var held *jobhost.Held
	var from [2]int64
	switch ty {
	case cluster.TypeJobDrop:
		var d cluster.JobDrop
		if err := proto.Decode(body, &d); err != nil {
			bad(err)
			return
		}
		e.jobs.Drop(d.ID, d.Lease)
		_ = st.Close()
		return
	case cluster.TypeJobResume:
		var r cluster.JobResume
		if err := proto.Decode(body, &r); err != nil {
			bad(err)
			return
		}
		if r.Stdout < 0 || r.Stderr < 0 {
			bad(fmt.Errorf("JobResume of job %d from offsets %d, %d", r.ID, r.Stdout, r.Stderr))
			return
		}
		j, err := e.jobs.Resume(r.ID, r.Lease)
		if err != nil {
			refuse(cluster.Refuse{Reason: cluster.RefuseUnknown, Message: fmt.Sprintf("no job %d held under lease %d", r.ID, r.Lease)}, r.ID)
			return
		}
		if out, errs := j.Acked(); r.Stdout < out || r.Stderr < errs {
			// The master lost output it acknowledged: this attempt
			// cannot be resumed whole.
			refuse(cluster.Refuse{Reason: cluster.RefuseUnknown, Message: fmt.Sprintf("job %d: its output below %d, %d was acknowledged and dropped (asked from %d, %d)", r.ID, out, errs, r.Stdout, r.Stderr)}, r.ID)
			return
		}
		held, from = j, [2]int64{r.Stdout, r.Stderr}
	case cluster.TypeJobRun:
		run, source, stdin, err := readJobRun(st, body)
		if err != nil {
			bad(err)
			return
		}
		j, r := e.runJob(run, source, stdin)
		if j == nil {
			refuse(r, run.ID)
			return
		}
		held = j
	default:
		bad(fmt.Errorf("%w: type %d on a job stream", proto.ErrUnexpected, ty))
		return
	}
	if err := proto.WriteMessage(st, cluster.TypeAccept, cluster.Accept{}); err != nil {
		_ = st.Close()
		return
	}
	e.follow(st, held, from)
}

// readJobRun decodes the JobRun body and reads the source and stdin that
// follow it on st.
func readJobRun(st *yamux.Stream, body []byte) (run cluster.JobRun, source, stdin []byte, err error) {
	if err := proto.Decode(body, &run); err != nil {
		return run, nil, nil, err
	}
	switch {
	case run.Size < 0 || run.Size > job.MaxSource:
		return run, nil, nil, fmt.Errorf("JobRun of job %d with %d bytes of source (at most %d)", run.ID, run.Size, job.MaxSource)
	case run.StdinSize < 0 || run.StdinSize > proto.MaxJobStdin:
		return run, nil, nil, fmt.Errorf("JobRun of job %d with %d bytes of stdin (at most %d)", run.ID, run.StdinSize, proto.MaxJobStdin)
	case run.NoStdin && run.StdinSize != 0:
		return run, nil, nil, fmt.Errorf("JobRun of job %d without stdin and with %d bytes of it", run.ID, run.StdinSize)
	}
	_ = st.SetReadDeadline(time.Now().Add(offerTimeout + time.Duration((run.Size+run.StdinSize)>>20)*jobReadPerMiB))
	source, stdin = make([]byte, run.Size), make([]byte, run.StdinSize)
	if _, err := io.ReadFull(st, source); err != nil {
		return run, nil, nil, fmt.Errorf("JobRun of job %d: its source: %w", run.ID, err)
	}
	if _, err := io.ReadFull(st, stdin); err != nil {
		return run, nil, nil, fmt.Errorf("JobRun of job %d: its stdin: %w", run.ID, err)
	}
	return run, source, stdin, nil
}

// runJob starts run if the limits allow one more task (a job already held
// under its lease is returned as it is), else says why not.
func (e *executor) runJob(run cluster.JobRun, source, stdin []byte) (*jobhost.Held, cluster.Refuse) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if j, err := e.jobs.Resume(run.ID, run.Lease); err == nil {
		return j, cluster.Refuse{}
	}
	if r, ok := e.roomLocked(); !ok {
		return nil, r
	}
	j, err := e.jobs.Run(run, source, stdin)
	if err != nil {
		var re *cluster.RefusedError
		if errors.As(err, &re) {
			return nil, cluster.Refuse{Reason: re.Reason, Message: re.Message}
		}
		return nil, cluster.Refuse{Reason: cluster.RefuseLeaving, Message: err.Error()}
	}
	return j, cluster.Refuse{}
}

// follow sends j's output from the offsets from, then its end, on st, and
// takes the master's JobAck, JobCancel and JobRelease, until the job is
// released, the master closes the stream, or the stream breaks (the job is
// kept, with every byte not acknowledged).
func (e *executor) follow(st *yamux.Stream, j *jobhost.Held, from [2]int64) {
	_ = st.SetDeadline(time.Time{})
	st.Shrink()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	control := make(chan struct{})
	go func() {
		defer close(control)
		e.jobControl(st, j)
		cancel()
		// Wake a write that waits for the master's window.
		_ = st.SetWriteDeadline(time.Unix(1, 0))
	}()
	end, err := j.Follow(ctx, from[0], from[1], func(stream int, offset int64, data []byte) error {
		return proto.WriteMessage(st, cluster.TypeJobOutput, cluster.JobOutput{Stream: stream, Offset: offset, Data: data})
	})
	if err == nil {
		err = proto.WriteMessage(st, cluster.TypeJobEnd, end)
	}
	if err != nil {
		if ctx.Err() == nil {
			lvl := e.log.Debug
			if errors.Is(err, cluster.ErrJobGap) {
				lvl = e.log.Warn
			}
			lvl("reshd: a job's stream ended; the job is kept", "master", e.cfg.Master, "job", j.ID(), "err", err)
		}
		_ = st.Close()
		_ = st.SetReadDeadline(time.Unix(1, 0))
	}
	<-control
	_ = st.Close()
}

// jobControl reads the master's messages on a job's stream: JobAck drops
// acknowledged output, JobCancel kills the job, JobRelease forgets it. It
// returns after JobRelease, at the stream's end, or at a malformed message
// (logged).
func (e *executor) jobControl(st *yamux.Stream, j *jobhost.Held) {
	for {
		t, body, err := proto.ReadMessage(st)
		if err != nil {
			return
		}
		switch t {
		case cluster.TypeJobAck:
			var a cluster.JobAck
			if err = proto.Decode(body, &a); err == nil {
				j.Ack(a.Stdout, a.Stderr)
				continue
			}
		case cluster.TypeJobCancel:
			var c cluster.JobCancel
			if err = proto.Decode(body, &c); err == nil {
				e.log.Info("reshd: the master cancelled a job", "master", e.cfg.Master, "job", j.ID(), "reason", c.Reason)
				j.Cancel(c.Reason)
				continue
			}
		case cluster.TypeJobRelease:
			j.Release()
			return
		default:
			err = fmt.Errorf("%w: type %d on a job stream", proto.ErrUnexpected, t)
		}
		e.log.Warn("reshd: malformed message on a job's stream: closed; the job is kept", "master", e.cfg.Master, "job", j.ID(), "err", err)
		return
	}
}
