package connection

import "time"

// rttEstimator computes the retransmission timeout from measured round trips
// as RFC 6298 does: SRTT and RTTVAR smoothed with gains 1/8 and 1/4, RTO =
// SRTT + 4·RTTVAR, clamped to [min, max], doubled on each timeout while the
// peer is silent.
type rttEstimator struct {
	srtt, rttvar time.Duration
	base         time.Duration // SRTT + 4·RTTVAR, clamped
	shift        uint          // doublings since the peer was last heard
	min, max     time.Duration
	measured     bool
}

func newRTTEstimator(min, max time.Duration) rttEstimator {
	return rttEstimator{base: max / 3, min: min, max: max}
}

// sample adds one round-trip measurement (never from a retransmitted frame:
// Karn's rule).
func (r *rttEstimator) sample(d time.Duration) {
	if d <= 0 {
		d = time.Microsecond
	}
	if !r.measured {
		r.srtt, r.rttvar, r.measured = d, d/2, true
	} else {
		diff := r.srtt - d
		if diff < 0 {
			diff = -diff
		}
		r.rttvar = (3*r.rttvar + diff) / 4
		r.srtt = (7*r.srtt + d) / 8
	}
	r.base = min(max(r.srtt+4*r.rttvar, r.min), r.max)
}

// backoff doubles the timeout after a retransmission timeout during which
// the peer stayed silent.
func (r *rttEstimator) backoff() {
	if r.shift < 16 {
		r.shift++
	}
}

// heard undoes the backoff: the peer is alive, so a loss was damage, not
// congestion or a dead path (TCP below handles congestion).
func (r *rttEstimator) heard() { r.shift = 0 }

// rto returns the current retransmission timeout.
func (r *rttEstimator) rto() time.Duration {
	return min(r.base<<r.shift, r.max)
}
