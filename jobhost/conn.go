package jobhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"resh/cluster"
)

// Conn is an in-process cluster.JobConn over this held job, following its
// output from the given offsets: what the master uses for its in-process
// executor (a standalone reshd), named executor. Close it (or Release it)
// when done: a goroutine follows the job until then.
func (j *Held) Conn(executor string, stdoutFrom, stderrFrom int64) cluster.JobConn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{j: j, executor: executor, ctx: ctx, stop: cancel, items: make(chan item), done: make(chan struct{})}
	go c.follow(stdoutFrom, stderrFrom)
	return c
}

// conn is Held.Conn's JobConn.
type conn struct {
	j        *Held
	executor string
	ctx      context.Context
	stop     context.CancelFunc
	items    chan item
	done     chan struct{} // closed when follow returned

	mu    sync.Mutex
	ended bool // Next returned the end, or an error
	err   error
}

// item is what follow hands to Next.
type item struct {
	out *cluster.JobOutput
	end *cluster.JobEnd
	err error
}

func (c *conn) follow(stdoutFrom, stderrFrom int64) {
	defer close(c.done)
	send := func(it item) error {
		select {
		case c.items <- it:
			return nil
		case <-c.ctx.Done():
			return c.ctx.Err()
		}
	}
	end, err := c.j.Follow(c.ctx, stdoutFrom, stderrFrom, func(stream int, offset int64, data []byte) error {
		return send(item{out: &cluster.JobOutput{Stream: stream, Offset: offset, Data: data}})
	})
	switch {
	case c.ctx.Err() != nil:
		return
	case errors.Is(err, cluster.ErrUnknownJob):
		err = fmt.Errorf("%w: %w", cluster.ErrJobLost, err)
	}
	if err != nil {
		_ = send(item{err: err})
		return
	}
	_ = send(item{end: &end})
}

func (c *conn) Next() (*cluster.JobOutput, *cluster.JobEnd, error) {
	c.mu.Lock()
	if c.ended {
		err := c.err
		c.mu.Unlock()
		return nil, nil, err
	}
	c.mu.Unlock()
	select {
	case it := <-c.items:
		if it.out != nil {
			return it.out, nil, nil
		}
		c.mu.Lock()
		c.ended, c.err = true, io.EOF
		if it.err != nil {
			c.err = it.err
		}
		c.mu.Unlock()
		return nil, it.end, it.err
	case <-c.ctx.Done():
		return nil, nil, fmt.Errorf("%w: the job's conn is closed", cluster.ErrJobLost)
	}
}

func (c *conn) Ack(stdout, stderr int64) error {
	c.j.Ack(stdout, stderr)
	return nil
}

func (c *conn) Cancel(reason string) error {
	c.j.Cancel(reason)
	return nil
}

func (c *conn) Release() error {
	c.j.Release()
	return c.Close()
}

func (c *conn) Close() error {
	c.stop()
	<-c.done
	return nil
}

func (c *conn) Executor() string { return c.executor }
