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
	t        *tamperer    // nil when Tamper is off; before the mangler
	m        *mangler     // nil when no per-byte fault is on
	stalled  bool
	q        *queue // nil until a timing fault is first used
	sums     *sums  // nil unless logging
	tout     []byte // reused output buffer of the tamperer
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

// refresh picks up changed faults. When Tamper is switched off, what the
// tamperer held is delivered, untouched.
func (pu *pump) refresh() error {
	fs := pu.c.p.faults.Load()
	if fs == pu.fs {
		return nil
	}
	pu.fs, pu.f = fs, fs.f[pu.d]
	next := pu.off // input offset of the next byte the mangler gets
	if pu.t != nil {
		next = pu.t.pos
	}
	switch {
	case !pu.f.mangles():
		pu.m = nil
	case pu.m == nil:
		pu.m = newMangler(pu.key, next, pu.f, pu.reported)
	default:
		pu.m.set(pu.f)
	}
	switch {
	case pu.f.Tamper > 0 && pu.t == nil:
		pu.t = newTamperer(pu.key, pu.off, pu.f.Tamper, pu.reported)
	case pu.f.Tamper > 0:
		pu.t.set(pu.f.Tamper)
	case pu.t != nil:
		err := pu.release()
		pu.t = nil
		return err
	}
	return nil
}

// forward passes the input chunk, from input offset start on, through the
// tamperer and the mangler and delivers the output.
func (pu *pump) forward(chunk []byte, start int64) error {
	out := chunk
	if pu.t != nil {
		out = pu.t.process(pu.tout[:0], chunk)
		pu.tout = out[:0]
	}
	return pu.mangle(out, start)
}

// mangle passes b, output of the tamperer, through the mangler and
// delivers the output.
func (pu *pump) mangle(b []byte, start int64) error {
	if pu.m != nil {
		b = pu.m.process(pu.out[:0], b)
		pu.out = b[:0]
	}
	return pu.deliver(b, start)
}

// release delivers what the tamperer holds, untouched: at the end of the
// input, before a drop or a stall, and when Tamper is switched off.
func (pu *pump) release() error {
	if pu.t == nil || len(pu.t.held) == 0 {
		return nil
	}
	start := pu.t.pos
	b := pu.t.flush(pu.tout[:0])
	pu.tout = b[:0]
	return pu.mangle(b, start)
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
		if pu.refresh() != nil {
			c.fail()
			return
		}
		f := &pu.f
		if dropReached(f, pu.off) {
			if pu.release() != nil {
				c.fail()
				return
			}
			pu.dropNow()
			return
		}
		if stallReached(f, pu.off) {
			if pu.release() != nil {
				c.fail()
				return
			}
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
			start := pu.off
			pu.off += n
			if err := pu.forward(chunk, start); err != nil {
				c.fail()
				return
			}
			continue
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				if pu.release() != nil {
					c.fail()
					return
				}
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
