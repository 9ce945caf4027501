package mitm

import "time"

// delay returns the latency of the chunk starting at input offset off:
// Latency plus a jitter uniform in [-Jitter, +Jitter], never negative.
func delay(f *Faults, key uint64, off int64) time.Duration {
	d := f.Latency
	if f.Jitter > 0 {
		u := unit(hashAt(key, kindJitter, off))
		d += time.Duration((2*u - 1) * float64(f.Jitter))
	}
	return max(d, 0)
}

// due returns when the chunk starting at input offset off is delivered.
func (pu *pump) due(off int64) time.Time {
	return time.Now().Add(delay(&pu.f, pu.key, off))
}
