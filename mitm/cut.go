package mitm

// cutLen returns how many bytes a cut starting at offset off removes
// (1..maxRun): a framing error for the receiver.
func cutLen(key uint64, off int64) int64 {
	return 1 + int64(hashAt(key, kindCut|kindReseed<<1, off)%maxRun)
}
