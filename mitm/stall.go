package mitm

// stallReached reports whether forwarding stops at input offset off.
func stallReached(f *Faults, off int64) bool {
	return f.StallAfter > 0 && off >= f.StallAfter
}

// stallLimit returns how many bytes may still pass before the stall.
func stallLimit(f *Faults, off int64) int64 {
	if f.StallAfter <= 0 {
		return never
	}
	return f.StallAfter - off
}

// stall stops forwarding (the pump no longer reads, so the sender's
// buffers fill up as in a black hole) until the faults change or the
// connection ends; it returns false when the connection ended.
func (pu *pump) stall() bool {
	if !pu.stalled {
		pu.stalled = true
		pu.reported(kindStall, pu.off, 0)
	}
	select {
	case <-pu.fs.changed:
		return true
	case <-pu.c.done:
		return false
	}
}
