package connection

import "time"

// rttEstimator computes the retransmission timeout from measured round trips
// as RFC 6298 does: SRTT and RTTVAR smoothed with gains 1/8 and 1/4, RTO =
// SRTT + 4·RTTVAR, clamped to [min, max], doubled on each timeout.
type rttEstimator struct {
	srtt, rttvar time.Duration
	rto          time.Duration
	min, max     time.Duration
	measured     bool
}

func newRTTEstimator(min, max time.Duration) rttEstimator {
	return rttEstimator{rto: max / 3, min: min, max: max}
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
	r.rto = min(max(r.srtt+4*r.rttvar, r.min), r.max)
}

// backoff doubles the timeout after a retransmission timeout.
func (r *rttEstimator) backoff() {
	r.rto = min(2*r.rto, r.max)
}

// smoothed returns the smoothed round-trip time, or the RTO before any
// measurement.
func (r *rttEstimator) smoothed() time.Duration {
	if !r.measured {
		return r.rto
	}
	return r.srtt
}
