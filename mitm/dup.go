package mitm

// dupLen returns how many bytes a dup event at offset off repeats
// (1..maxRun).
func dupLen(key uint64, off int64) int {
	return 1 + int(hashAt(key, kindDup|kindReseed<<1, off)%maxRun)
}

// dupRun appends again the last n bytes output so far (fewer at the start of
// the stream): dst[start:] is this call's output, m.hist the earlier one.
func (m *mangler) dupRun(dst []byte, start, n int) []byte {
	cur := dst[start:]
	if len(cur) >= n {
		return append(dst, cur[len(cur)-n:]...)
	}
	var run [maxRun]byte
	old := min(m.histN, n-len(cur))
	k := copy(run[:], m.hist[m.histN-old:m.histN])
	k += copy(run[k:], cur)
	return append(dst, run[:k]...)
}
