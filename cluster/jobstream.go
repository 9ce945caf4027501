package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"resh/proto"
)

// perMiB is how much longer the master waits for the answer to a JobRun
// per MiB of source and stdin written with it.
const perMiB = time.Second

// runJob opens a job stream on l, writes JobRun, the source and the stdin,
// and returns the JobConn once the executor accepted, or its refusal (a
// *RefusedError). ctx ending cuts the exchange short.
func (l *link) runJob(ctx context.Context, run JobRun, source, stdin []byte) (JobConn, error) {
	size := time.Duration((len(source)+len(stdin))>>20) * perMiB
	return l.openJob(ctx, size, func(st *yamux.Stream) error {
		if err := proto.WriteMessage(st, TypeJobRun, run); err != nil {
			return err
		}
		if _, err := st.Write(source); err != nil {
			return err
		}
		_, err := st.Write(stdin)
		return err
	})
}

// resumeJob opens a job stream on l with JobResume r, and returns the
// JobConn once the executor accepted; ErrUnknownJob when it refused with
// RefuseUnknown, a *RefusedError for another refusal.
func (l *link) resumeJob(r JobResume) (JobConn, error) {
	c, err := l.openJob(context.Background(), 0, func(st *yamux.Stream) error {
		return proto.WriteMessage(st, TypeJobResume, r)
	})
	var re *RefusedError
	if errors.As(err, &re) && re.Reason == RefuseUnknown {
		return nil, fmt.Errorf("%w (executor %s)", ErrUnknownJob, l.name)
	}
	return c, err
}

// dropJob opens a stream on l with JobDrop d and closes it.
func (l *link) dropJob(d JobDrop) error {
	st, err := l.mux.OpenStream()
	if err != nil {
		return err
	}
	_ = st.SetWriteDeadline(time.Now().Add(l.m.cfg.OfferTimeout))
	err = proto.WriteMessage(st, TypeJobDrop, d)
	_ = st.Close()
	return err
}

// openJob proposes a job stream (see propose) and makes it a JobConn.
func (l *link) openJob(ctx context.Context, extra time.Duration, write func(*yamux.Stream) error) (JobConn, error) {
	st, r, err := l.propose(ctx, extra, "the job", write)
	if err != nil {
		return nil, err
	}
	if r != nil {
		return nil, &RefusedError{Executor: l.name, Reason: r.Reason, Message: r.Message}
	}
	return &linkJob{st: st, l: l}, nil
}

// linkJob is the JobConn of a job stream on an executor's link.
type linkJob struct {
	st *yamux.Stream
	l  *link

	ended bool       // Next read JobEnd (Next's alone)
	wmu   sync.Mutex // serialises writes
	once  sync.Once  // Close's
}

func (c *linkJob) Executor() string { return c.l.name }

func (c *linkJob) Next() (*JobOutput, *JobEnd, error) {
	if c.ended {
		return nil, nil, io.EOF
	}
	t, body, err := proto.ReadMessage(c.st)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: executor %s: %v", ErrJobLost, c.l.name, err)
	}
	switch t {
	case TypeJobOutput:
		var o JobOutput
		if err := proto.Decode(body, &o); err != nil {
			return nil, nil, c.malformed(err.Error())
		}
		if (o.Stream != JobStdout && o.Stream != JobStderr) || o.Offset < 0 || len(o.Data) == 0 || len(o.Data) > MaxJobChunk {
			return nil, nil, c.malformed(fmt.Sprintf("stream %d, offset %d, %d bytes", o.Stream, o.Offset, len(o.Data)))
		}
		return &o, nil, nil
	case TypeJobEnd:
		var e JobEnd
		if err := proto.Decode(body, &e); err != nil {
			return nil, nil, c.malformed(err.Error())
		}
		c.ended = true
		c.st.Shrink()
		return nil, &e, nil
	}
	return nil, nil, c.malformed(fmt.Sprintf("type %d", t))
}

// malformed closes the stream after a message that breaks spec.md §8, and
// says so.
func (c *linkJob) malformed(what string) error {
	c.l.m.log.Warn("reshd: malformed job message from an executor: stream closed", "executor", c.l.name, "got", what)
	_ = c.Close()
	return fmt.Errorf("%w: executor %s sent a malformed job message (%s)", ErrJobLost, c.l.name, what)
}

// send writes one message, within the offer timeout.
func (c *linkJob) send(t proto.Type, v any) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.st.SetWriteDeadline(time.Now().Add(c.l.m.cfg.OfferTimeout))
	if err := proto.WriteMessage(c.st, t, v); err != nil {
		return fmt.Errorf("%w: executor %s: %v", ErrJobLost, c.l.name, err)
	}
	return nil
}

func (c *linkJob) Ack(stdout, stderr int64) error {
	return c.send(TypeJobAck, JobAck{Stdout: stdout, Stderr: stderr})
}

func (c *linkJob) Cancel(reason string) error {
	return c.send(TypeJobCancel, JobCancel{Reason: reason})
}

func (c *linkJob) Release() error {
	err := c.send(TypeJobRelease, JobRelease{})
	_ = c.Close()
	return err
}

// Close half-closes the stream (the executor, reading its end without a
// JobRelease, keeps the job) and wakes a Next that waits.
func (c *linkJob) Close() error {
	c.once.Do(func() {
		_ = c.st.Close()
		_ = c.st.SetReadDeadline(time.Unix(1, 0))
	})
	return nil
}
