package mitm

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
)

// Sizes of each pump's read buffer: it starts small and grows while reads
// fill it (a bulk transfer), because large reads and writes halve the cost
// of the proxy.
const (
	minBuf = 64 << 10
	maxBuf = 1 << 20
)

// pump forwards one direction of a connection: it reads from src, applies
// the faults and writes to dst (itself, or through a delivery queue when
// timing faults are on).
type pump struct {
	c        *conn
	d        dir
	src, dst net.Conn
	ctr      *dirCounters
	key      uint64
	read     atomic.Int64 // bytes read from src
	written  int64        // bytes written to dst (by the pump or its queue)
	off      int64        // input offset of the next byte to process
	fs       *faultSet    // last faults seen
	f        Faults       // this direction's faults in fs
	m        *mangler     // nil when no per-byte fault is on
	stalled  bool
	q        *queue // nil until a timing fault is first used
	sums     *sums  // nil unless logging
	out      []byte // reused output buffer of the mangler
	reported func(kind int, off int64, n int)
}

func newPump(c *conn, d dir, src, dst net.Conn, logging bool) *pump {
	pu := &pump{c: c, d: d, src: src, dst: dst, ctr: &c.p.dirs[d], key: streamKey(c.p.seed, c.id, d)}
	if logging {
		pu.sums = newSums()
	}
	pu.reported = func(kind int, off int64, n int) {
		pu.ctr.fault(kind)
		pu.c.p.logFault(pu.c.id, pu.d, off, kind, n)
	}
	return pu
}

// refresh picks up changed faults.
func (pu *pump) refresh() {
	fs := pu.c.p.faults.Load()
	if fs == pu.fs {
		return
	}
	pu.fs, pu.f = fs, fs.f[pu.d]
	switch {
	case !pu.f.mangles():
		pu.m = nil
	case pu.m == nil:
		pu.m = newMangler(pu.key, pu.off, pu.f, pu.reported)
	default:
		pu.m.set(pu.f)
	}
}

func (pu *pump) run() {
	c := pu.c
	defer c.wg.Done()
	defer c.pumpDone()
	buf := make([]byte, minBuf)
	var pending []byte
	var rerr error
	lastN := 0
	for {
		pu.refresh()
		f := &pu.f
		if dropReached(f, pu.off) {
			pu.dropNow()
			return
		}
		if stallReached(f, pu.off) {
			if !pu.stall() {
				return
			}
			continue
		}
		pu.stalled = false
		if len(pending) > 0 {
			n := min(int64(len(pending)), dropLimit(f, pu.off), stallLimit(f, pu.off))
			chunk := pending[:n]
			pending = pending[n:]
			out := chunk
			if pu.m != nil {
				out = pu.m.process(pu.out[:0], chunk)
				pu.out = out[:0]
			}
			start := pu.off
			pu.off += n
			if err := pu.deliver(out, start); err != nil {
				c.fail()
				return
			}
			continue
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				pu.eof()
			} else {
				c.fail()
			}
			return
		}
		if lastN == len(buf) && len(buf) < maxBuf {
			buf = make([]byte, 2*len(buf)) // the last read filled it
		}
		n, err := pu.src.Read(buf)
		if n > 0 {
			start := pu.read.Add(int64(n)) - int64(n)
			pu.ctr.in.Add(int64(n))
			if pu.sums != nil {
				pu.sums.in.Write(buf[:n])
			}
			if c.p.cfg.Dump != nil {
				c.p.dump(c.id, pu.d, start, buf[:n])
			}
		}
		pending, rerr, lastN = buf[:n], err, n
	}
}

// write writes b to dst, counting what was written.
func (pu *pump) write(b []byte) error {
	n, err := pu.dst.Write(b)
	pu.written += int64(n)
	pu.ctr.out.Add(int64(n))
	if pu.sums != nil {
		pu.sums.out.Write(b[:n])
	}
	return err
}

// deliver writes b, the output for input offset off on, now, or through
// the queue when timing faults are on or earlier data is still queued.
func (pu *pump) deliver(b []byte, off int64) error {
	if len(b) == 0 {
		return nil
	}
	if pu.f.timed() || pu.q != nil && pu.q.busy() {
		return pu.enqueue(item{data: append([]byte(nil), b...), due: pu.due(off)})
	}
	return pu.write(b)
}

// eof passes the half-close on once everything before it is delivered.
func (pu *pump) eof() {
	if pu.q != nil && pu.q.busy() {
		if pu.enqueue(item{op: opEOF}) == nil {
			pu.q.wait(pu.c.done)
		}
		return
	}
	if closeWrite(pu.dst) != nil {
		pu.c.fail()
	}
}

// summary returns the byte counts and sums for the close log line.
func (pu *pump) summary() dirSummary {
	s := dirSummary{In: pu.read.Load(), Out: pu.written}
	if pu.sums != nil {
		s.InSHA256, s.OutSHA256 = hexSum(pu.sums.in), hexSum(pu.sums.out)
	}
	return s
}
