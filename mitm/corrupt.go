package mitm

// corruptByte returns the replacement for byte b at offset off: always a
// different value.
func corruptByte(key uint64, off int64, b byte) byte {
	return b ^ byte(1+hashAt(key, kindCorrupt|kindReseed<<1, off)%255)
}
