package mitm

import (
	"errors"
	"sync/atomic"
	"time"
)

// queueLen bounds the chunks waiting in a delivery queue (each at most a
// few times maxBuf), which bounds the memory and the data in flight.
const queueLen = 8

// Operations of queue items.
const (
	opData = iota
	opEOF  // half-close the destination
	opDrop // reset the connection
)

// item is a chunk of output, or a control operation, due at a given time.
type item struct {
	op   int
	data []byte
	due  time.Time
	off  int64 // input offset, for opDrop
}

// queue delivers one direction's output in order, after its latency, at the
// configured bandwidth and in slices, in its own goroutine so that reading
// goes on meanwhile.
type queue struct {
	ch       chan item
	inflight atomic.Int64 // items enqueued and not fully delivered
	exited   chan struct{}
	last     time.Time // due time of the last item (pump only)
}

var errClosed = errors.New("mitm: connection closed")

// busy reports whether earlier items are not yet delivered.
func (q *queue) busy() bool { return q.inflight.Load() > 0 }

// wait waits until the queue's goroutine exits or done is closed.
func (q *queue) wait(done <-chan struct{}) {
	select {
	case <-q.exited:
	case <-done:
	}
}

// enqueue hands it to the delivery goroutine, starting it if needed.
func (pu *pump) enqueue(it item) error {
	c := pu.c
	if pu.q == nil {
		pu.q = &queue{ch: make(chan item, queueLen), exited: make(chan struct{})}
		c.wg.Add(1)
		go pu.deliverLoop(pu.q)
	}
	q := pu.q
	if it.due.Before(q.last) {
		it.due = q.last // keep the order
	}
	q.last = it.due
	q.inflight.Add(1)
	select {
	case q.ch <- it:
		return nil
	case <-c.done:
		return errClosed
	}
}

// deliverLoop is the delivery goroutine.
func (pu *pump) deliverLoop(q *queue) {
	c := pu.c
	defer c.wg.Done()
	defer close(q.exited)
	var pace pacer
	for {
		var it item
		select {
		case it = <-q.ch:
		case <-c.done:
			return
		}
		if !sleep(time.Until(it.due), c.done) {
			return
		}
		switch it.op {
		case opEOF:
			if closeWrite(pu.dst) != nil {
				c.fail()
			}
			q.inflight.Add(-1)
			return
		case opDrop:
			c.drop(pu.d, it.off)
			return
		}
		for b := it.data; len(b) > 0; {
			f := c.p.faults.Load().f[pu.d]
			n := pieceLen(&f, len(b))
			if !sleep(pace.take(f.Bandwidth, n, time.Now()), c.done) {
				return
			}
			if pu.write(b[:n]) != nil {
				c.fail()
				return
			}
			b = b[n:]
		}
		q.inflight.Add(-1)
	}
}

// sleep waits for d, or until done is closed (then it returns false).
func sleep(d time.Duration, done <-chan struct{}) bool {
	if d <= 0 {
		select {
		case <-done:
			return false
		default:
			return true
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}
