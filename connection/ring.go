package connection

// The send and receive buffers are rings addressed by stream offset: the
// byte at offset o lives at o mod len(ring). One side fills free space while
// the other reads live space, each outside the session lock, so that copying
// never serialises the application, the writer and the reader.

// ringCopyIn copies p into ring at stream offset off; len(p) <= len(ring).
func ringCopyIn(ring []byte, off uint64, p []byte) {
	i := int(off % uint64(len(ring)))
	n := copy(ring[i:], p)
	copy(ring, p[n:])
}

// ringCopyOut copies len(p) bytes from ring at stream offset off into p.
func ringCopyOut(p []byte, ring []byte, off uint64) {
	i := int(off % uint64(len(ring)))
	n := copy(p, ring[i:])
	copy(p[n:], ring)
}

// ringSlices returns the one or two pieces of ring holding n bytes from
// stream offset off.
func ringSlices(ring []byte, off uint64, n int) ([]byte, []byte) {
	i := int(off % uint64(len(ring)))
	if i+n <= len(ring) {
		return ring[i : i+n], nil
	}
	return ring[i:], ring[:n-(len(ring)-i)]
}

// ringMin is the size a ring starts at; it doubles as far as its buffer's
// configured size while a session is busy.
const ringMin = 4 << 10

// growRing returns a ring of at least need bytes (at most limit) holding the
// bytes of stream offsets lo..hi at their places. The old ring is left as it
// was, so a copy still reading it outside the lock stays correct.
func growRing(ring []byte, lo, hi uint64, need, limit int) []byte {
	if len(ring) >= need {
		return ring
	}
	n := max(len(ring), min(ringMin, limit))
	for n < need {
		n = min(2*n, limit)
	}
	nr := make([]byte, n)
	if len(ring) > 0 && hi > lo {
		p1, p2 := ringSlices(ring, lo, int(hi-lo))
		ringCopyIn(nr, lo, p1)
		ringCopyIn(nr, lo+uint64(len(p1)), p2)
	}
	return nr
}
