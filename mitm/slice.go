package mitm

// maxPace is the largest piece written at a time under a bandwidth limit.
const maxPace = 16 << 10

// pieceLen returns how many of n bytes to write next: at most Slice, and
// under a bandwidth limit at most about 20 ms worth, so the rate is smooth.
func pieceLen(f *Faults, n int) int {
	if f.Slice > 0 {
		n = min(n, f.Slice)
	}
	if f.Bandwidth > 0 {
		n = min(n, int(max(1, min(f.Bandwidth/50, maxPace))))
	}
	return n
}
