package jobhost

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"resh/cluster"
	"resh/job"
	"resh/proto"
)

// Held is one job a Host holds: running, or ended and not released. It
// keeps each output stream from the last acknowledged offset on, and the
// end once the job ended.
type Held struct {
	h      *Host
	id     int64
	lease  int64
	cancel context.CancelCauseFunc
	expiry *time.Timer // after the end, until forgotten; under h.mu

	mu        sync.Mutex
	out       [2]output       // stdout, stderr
	end       *cluster.JobEnd // nil while running
	cancelled string          // Cancel's reason, once cancelled
	gone      bool            // released, dropped or expired: forgotten
	more      chan struct{}   // closed and replaced at each change
}

// output is one stream's bytes from base (what was acknowledged) on.
type output struct {
	base int64
	data []byte
}

// length is the stream's length from offset 0.
func (o *output) length() int64 { return o.base + int64(len(o.data)) }

// ID is the job's id in the store.
func (j *Held) ID() int64 { return j.id }

// Lease is the lease the job runs under.
func (j *Held) Lease() int64 { return j.lease }

// changedLocked wakes the followers. Called with j.mu.
func (j *Held) changedLocked() {
	close(j.more)
	j.more = make(chan struct{})
}

// run runs the job and records its end.
func (j *Held) run(ctx context.Context, spec job.Spec) cluster.JobEnd {
	v := job.Run(ctx, spec)
	j.mu.Lock()
	defer j.mu.Unlock()
	switch cause := context.Cause(ctx); {
	case j.cancelled != "" || errors.Is(cause, errCanceled):
		v.Verdict, v.Status, v.Signal = proto.VerdictCancelled, -1, 0
		v.Detail = "cancelled: " + j.cancelled
	case cause != nil:
		v.Detail = "killed: " + cause.Error()
	}
	end := cluster.JobEnd{Verdict: v, Exit: job.ExitOf(v)}
	if v.Verdict == proto.VerdictCancelled {
		end.Exit = proto.Exit{Code: proto.ExitCancelled}
	}
	j.end = &end
	j.changedLocked()
	return end
}

// hasEnded reports whether the job ended.
func (j *Held) hasEnded() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.end != nil
}

// forget marks the job forgotten: its followers stop.
func (j *Held) forget() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.gone {
		j.gone = true
		j.changedLocked()
	}
}

// Follow passes the output from the given offsets to out, in order per
// stream (cluster.JobStdout, cluster.JobStderr), in chunks of at most
// cluster.MaxJobChunk, live, and returns the end once the job has ended
// and every byte up to the final lengths was passed; or out's error, or
// ctx's. Bytes below what Ack dropped are gone: a Follow from an offset
// below the acknowledged length fails with cluster.ErrJobGap. A job that
// is forgotten meanwhile (released, dropped, expired) fails it with
// cluster.ErrUnknownJob. The data passed to out is its own.
func (j *Held) Follow(ctx context.Context, stdoutFrom, stderrFrom int64, out func(stream int, offset int64, data []byte) error) (cluster.JobEnd, error) {
	pos := [2]int64{stdoutFrom, stderrFrom}
	next := 0 // the stream looked at first, in turn
	for {
		j.mu.Lock()
		if j.gone {
			j.mu.Unlock()
			return cluster.JobEnd{}, cluster.ErrUnknownJob
		}
		stream := -1
		var chunk []byte
		for k := range 2 {
			i := (next + k) % 2
			o := &j.out[i]
			if pos[i] < o.base {
				j.mu.Unlock()
				return cluster.JobEnd{}, fmt.Errorf("%w (stream %d: offset %d, kept from %d)", cluster.ErrJobGap, i+1, pos[i], o.base)
			}
			if pos[i] < o.length() {
				from := pos[i] - o.base
				chunk = slices.Clone(o.data[from:min(int64(len(o.data)), from+cluster.MaxJobChunk)])
				stream = i
				break
			}
		}
		if stream < 0 {
			if j.end != nil {
				end := *j.end
				for i := range 2 {
					if n := j.out[i].length(); pos[i] > n {
						j.mu.Unlock()
						return cluster.JobEnd{}, fmt.Errorf("jobhost: job %d: offset %d of stream %d is beyond its %d bytes", j.id, pos[i], i+1, n)
					}
				}
				j.mu.Unlock()
				return end, nil
			}
			more := j.more
			j.mu.Unlock()
			select {
			case <-more:
				continue
			case <-ctx.Done():
				return cluster.JobEnd{}, ctx.Err()
			}
		}
		j.mu.Unlock()
		if err := out(stream+1, pos[stream], chunk); err != nil {
			return cluster.JobEnd{}, err
		}
		pos[stream] += int64(len(chunk))
		next = (stream + 1) % 2
	}
}

// Ack says that the master stored the output up to these lengths: the
// bytes below them are dropped. Lengths beyond what the job wrote count
// as what it wrote.
func (j *Held) Ack(stdout, stderr int64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for i, n := range [2]int64{stdout, stderr} {
		o := &j.out[i]
		drop := min(n, o.length()) - o.base
		if drop <= 0 {
			continue
		}
		o.data = slices.Clone(o.data[drop:])
		o.base += drop
	}
}

// Acked returns the lengths the master acknowledged (Ack): the output
// below them is dropped, and a Follow must start at or above them.
func (j *Held) Acked() (stdout, stderr int64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.out[0].base, j.out[1].base
}

// maxReason bounds a cancel's reason in the verdict's detail, so that the
// JobEnd fits in a message whatever the master sent.
const maxReason = 1 << 10

// Cancel kills the job, if it runs: its end has the verdict CANCELLED
// (exit code proto.ExitCancelled) and the detail "cancelled: " + reason.
func (j *Held) Cancel(reason string) {
	j.mu.Lock()
	if j.end != nil || j.cancelled != "" {
		j.mu.Unlock()
		return
	}
	if reason == "" {
		reason = "by the master"
	}
	if len(reason) > maxReason {
		reason = strings.ToValidUTF8(reason[:maxReason], "") + "..."
	}
	j.cancelled = reason
	j.mu.Unlock()
	j.cancel(errCanceled)
}

// Release forgets the job (its end is stored by the master): it is no
// longer held, listed or resumed. A job released while it runs is killed.
func (j *Held) Release() {
	j.h.mu.Lock()
	defer j.h.mu.Unlock()
	j.h.forgetLocked(j, errReleased)
}

// streamWriter appends a job's output to its held stream i.
type streamWriter struct {
	j *Held
	i int
}

func (w *streamWriter) Write(p []byte) (int, error) {
	j := w.j
	j.mu.Lock()
	defer j.mu.Unlock()
	j.out[w.i].data = append(j.out[w.i].data, p...)
	j.changedLocked()
	return len(p), nil
}
