package mitm

import "math"

// never is the offset of an event that never happens.
const never = math.MaxInt64

// Kinds of faults, also used to separate the random streams of each fault.
const (
	kindCorrupt = iota + 1
	kindCut
	kindDup
	kindInject
	kindDrop
	kindStall
	kindJitter
	kindRefuse
	kindTamper
	kindReseed = 0x100 // or-ed with a kind when a fault is (re)armed
)

var kindNames = [...]string{
	kindCorrupt: "corrupt",
	kindCut:     "cut",
	kindDup:     "dup",
	kindInject:  "inject",
	kindDrop:    "drop",
	kindStall:   "stall",
	kindJitter:  "jitter",
	kindRefuse:  "refuse",
	kindTamper:  "tamper",
}

// mix64 is the splitmix64 finalizer: a fast bijective 64-bit mixer.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// streamKey derives the key of one direction of one connection.
func streamKey(seed int64, conn uint64, d dir) uint64 {
	return mix64(mix64(mix64(uint64(seed))+conn) + uint64(d) + 1)
}

// hashAt is the random value of fault kind at offset off of a stream:
// every decision is made from it, so decisions depend only on
// (seed, connection, direction, kind, offset).
func hashAt(key uint64, kind int, off int64) uint64 {
	return mix64(key ^ mix64(uint64(kind)*0x9e3779b97f4a7c15^uint64(off)))
}

// unit maps h to a float64 in (0, 1].
func unit(h uint64) float64 {
	return float64(h>>11+1) * (1.0 / (1 << 53))
}

// geometric returns the number of bytes before the next event when each
// byte is an event with probability p, drawn from h (one draw, not one per
// byte).
func geometric(p float64, h uint64) int64 {
	switch {
	case !(p > 0): // also NaN
		return never
	case p >= 1:
		return 0
	}
	g := math.Floor(math.Log(unit(h)) / math.Log1p(-p))
	if !(g < 1<<62) {
		return never
	}
	return int64(g)
}

// event tracks the next offset at which one per-byte fault fires.
type event struct {
	kind int
	p    float64
	next int64
}

// arm (re)starts the event stream at offset off with probability p.
func (e *event) arm(key uint64, kind int, p float64, off int64) {
	e.kind, e.p = kind, p
	e.next = add(off, geometric(p, hashAt(key, kind|kindReseed, off)))
}

// advance moves the event past offset off, where it fired.
func (e *event) advance(key uint64, off int64) {
	e.next = add(off+1, geometric(e.p, hashAt(key, e.kind, off)))
}

// add adds without overflowing past never.
func add(a, b int64) int64 {
	if b >= never-a {
		return never
	}
	return a + b
}
