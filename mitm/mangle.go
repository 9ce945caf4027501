package mitm

// maxRun is the longest run of bytes a cut, dup or inject fault affects.
const maxRun = 64

// mangler applies the per-byte faults (corrupt, cut, dup, inject) of one
// direction of one connection. Its output depends only on the input bytes,
// never on how they are split into calls to process.
//
// At each input offset k, in this order: an inject event inserts garbage
// before byte k; a dup event repeats the last bytes output before byte k; a
// cut event removes a run of bytes starting at k; a corrupt event replaces
// byte k. Events at bytes removed by a cut have no effect.
type mangler struct {
	key    uint64
	off    int64 // input offset of the next byte
	skip   int64 // bytes still to remove for the current cut
	inject event
	dup    event
	cut    event
	cor    event
	hist   [maxRun]byte // last output bytes, for dup
	histN  int
	report func(kind int, off int64, n int) // called for each fault; may be nil
}

// newMangler returns a mangler for the stream with the given key, starting
// at input offset off.
func newMangler(key uint64, off int64, f Faults, report func(kind int, off int64, n int)) *mangler {
	m := &mangler{key: key, off: off, report: report}
	m.set(f)
	return m
}

// set changes the probabilities; a changed fault is re-armed from the
// current offset.
func (m *mangler) set(f Faults) {
	for _, x := range [...]struct {
		e    *event
		kind int
		p    float64
	}{
		{&m.inject, kindInject, f.Inject},
		{&m.dup, kindDup, f.Dup},
		{&m.cut, kindCut, f.Cut},
		{&m.cor, kindCorrupt, f.Corrupt},
	} {
		if x.e.kind == 0 || x.e.p != x.p {
			x.e.arm(m.key, x.kind, x.p, m.off)
		}
	}
}

func (m *mangler) fired(kind int, off int64, n int) {
	if m.report != nil {
		m.report(kind, off, n)
	}
}

// process appends to dst the output for the input p and returns it.
func (m *mangler) process(dst, p []byte) []byte {
	start := len(dst)
	for len(p) > 0 {
		k := m.off
		if m.inject.next == k {
			n := len(dst)
			dst = injectRun(dst, m.key, k)
			m.fired(kindInject, k, len(dst)-n)
			m.inject.advance(m.key, k)
		}
		if m.dup.next == k {
			n := len(dst)
			dst = m.dupRun(dst, start, dupLen(m.key, k))
			if len(dst) > n {
				m.fired(kindDup, k, len(dst)-n)
			}
			m.dup.advance(m.key, k)
		}
		if m.skip > 0 {
			n := min(m.skip, int64(len(p)), m.inject.next-k, m.dup.next-k)
			end := k + n
			for m.cut.next < end {
				m.cut.advance(m.key, m.cut.next)
			}
			for m.cor.next < end {
				m.cor.advance(m.key, m.cor.next)
			}
			m.skip -= n
			m.off = end
			p = p[n:]
			continue
		}
		if m.cut.next == k {
			m.skip = cutLen(m.key, k)
			m.fired(kindCut, k, int(m.skip))
			m.cut.advance(m.key, k)
			continue
		}
		if m.cor.next == k {
			dst = append(dst, corruptByte(m.key, k, p[0]))
			m.fired(kindCorrupt, k, 1)
			m.cor.advance(m.key, k)
			m.off++
			p = p[1:]
			continue
		}
		e := min(m.inject.next, m.dup.next, m.cut.next, m.cor.next)
		n := min(e-k, int64(len(p)))
		dst = append(dst, p[:n]...)
		m.off += n
		p = p[n:]
	}
	if m.dup.next != never || m.histN > 0 {
		m.remember(dst[start:])
	}
	return dst
}

// remember keeps the last maxRun output bytes.
func (m *mangler) remember(out []byte) {
	if len(out) >= maxRun {
		copy(m.hist[:], out[len(out)-maxRun:])
		m.histN = maxRun
		return
	}
	keep := min(m.histN, maxRun-len(out))
	copy(m.hist[:], m.hist[m.histN-keep:m.histN])
	copy(m.hist[keep:], out)
	m.histN = keep + len(out)
}
