package store

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestAppendPlan(t *testing.T) {
	for _, c := range []struct {
		length, offset int64
		n              int
		limit          int64
		skip, add      int
		err            error
	}{
		{0, 0, 5, 0, 0, 5, nil},                    // first bytes
		{5, 0, 5, 0, 5, 0, nil},                    // a resend
		{5, 3, 8, 0, 2, 6, nil},                    // overlapping: only the tail
		{5, 5, 0, 0, 0, 0, nil},                    // nothing
		{5, 6, 1, 0, 0, 0, ErrGap},                 // a byte missing
		{5, 0, 10, 8, 5, 3, nil},                   // the limit cuts
		{8, 8, 4, 8, 0, 0, nil},                    // at the limit
		{10, 4, 10, 8, 6, 0, nil},                  // beyond a lowered limit: keep what is there
		{0, -1, 1, 0, 0, 0, ErrInvalid},            // negative offset
		{0, 0, -1, 0, 0, 0, ErrInvalid},            // negative length
		{1, math.MaxInt64, 2, 0, 0, 0, ErrInvalid}, // overflow
	} {
		skip, add, err := appendPlan(c.length, c.offset, c.n, c.limit)
		if c.err != nil {
			assert.ErrorIs(t, err, c.err, "%+v", c)
			continue
		}
		assert.NoError(t, err, "%+v", c)
		assert.Equal(t, c.skip, skip, "skip %+v", c)
		assert.Equal(t, c.add, add, "add %+v", c)
	}
}

// FuzzAppendPlan: whatever the numbers, the plan stores only new bytes,
// right after the stored ones, within the limit, and refuses gaps.
func FuzzAppendPlan(f *testing.F) {
	f.Add(int64(5), int64(3), 8, int64(0))
	f.Add(int64(0), int64(0), 100, int64(10))
	f.Add(int64(10), int64(11), 1, int64(0))
	f.Fuzz(func(t *testing.T, length, offset int64, n int, limit int64) {
		skip, add, err := appendPlan(length, offset, n, limit)
		switch {
		case errors.Is(err, ErrInvalid):
			assert.True(t, length < 0 || offset < 0 || n < 0 || offset > math.MaxInt64-int64(n))
			return
		case errors.Is(err, ErrGap):
			assert.Greater(t, offset, length)
			return
		}
		if !assert.NoError(t, err) {
			return
		}
		assert.LessOrEqual(t, offset, length)
		assert.GreaterOrEqual(t, skip, 0)
		assert.GreaterOrEqual(t, add, 0)
		assert.LessOrEqual(t, skip+add, n)
		// The skipped bytes are exactly those stored already.
		assert.Equal(t, min(length-offset, int64(n)), int64(skip))
		// What is added starts at the stored length.
		if add > 0 {
			assert.Equal(t, length, offset+int64(skip))
			if limit > 0 {
				assert.LessOrEqual(t, length+int64(add), limit)
			}
		}
		if limit <= 0 {
			assert.Equal(t, n, skip+add, "without a limit everything is kept")
		}
	})
}
