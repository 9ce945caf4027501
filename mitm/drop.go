package mitm

// dropReached reports whether the connection must be reset at input
// offset off.
func dropReached(f *Faults, off int64) bool {
	return f.DropAfter > 0 && off >= f.DropAfter
}

// dropLimit returns how many bytes may still pass before the reset.
func dropLimit(f *Faults, off int64) int64 {
	if f.DropAfter <= 0 {
		return never
	}
	return f.DropAfter - off
}

// dropNow resets the connection once everything before it is delivered.
func (pu *pump) dropNow() {
	if pu.q != nil && pu.q.busy() {
		if pu.enqueue(item{op: opDrop, off: pu.off}) == nil {
			<-pu.c.done
		}
		return
	}
	pu.c.drop(pu.d, pu.off)
}
