package mitm

// injectRun appends the run of garbage (1..maxRun bytes) inserted before
// offset off.
func injectRun(dst []byte, key uint64, off int64) []byte {
	h := hashAt(key, kindInject|kindReseed<<1, off)
	n := 1 + int(h%maxRun)
	for i := 0; i < n; i++ {
		if i%8 == 0 {
			h = mix64(h + 0x9e3779b97f4a7c15)
		}
		dst = append(dst, byte(h>>(8*(i%8))))
	}
	return dst
}
