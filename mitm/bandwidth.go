package mitm

import "time"

// pacer limits a direction's rate: each piece is booked on a timeline that
// advances by len/rate, and idle time is not saved up as credit.
type pacer struct {
	next time.Time // when the next piece may be sent
}

// take books n bytes at rate bytes per second (0 = unlimited) and returns
// how long to wait before sending them.
func (pc *pacer) take(rate int64, n int, now time.Time) time.Duration {
	if rate <= 0 {
		pc.next = time.Time{}
		return 0
	}
	if pc.next.Before(now) {
		pc.next = now
	}
	wait := pc.next.Sub(now)
	pc.next = pc.next.Add(time.Duration(float64(n) * float64(time.Second) / float64(rate)))
	return wait
}
