package connection

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A closed session is remembered for keep, then forgotten; at most
// maxClosedRemembered are, the oldest forgotten first.
func TestClosedSessionsExpireInOrder(t *testing.T) {
	t0 := time.Unix(1000, 0)
	c := newClosedSessions(90 * time.Second)
	ids := make([]sessionID, 3)
	for i := range ids {
		ids[i][0] = byte(i + 1)
		c.add(ids[i], t0.Add(time.Duration(i)*time.Minute))
	}
	now := t0.Add(2 * time.Minute)
	require.False(t, c.has(ids[0], now), "closed 2m ago, kept 90s")
	require.True(t, c.has(ids[1], now))
	require.True(t, c.has(ids[2], now))
	var unknown sessionID
	unknown[0] = 9
	require.False(t, c.has(unknown, now))

	c.add(unknown, t0.Add(3*time.Minute)) // expires the first two
	require.Equal(t, 2, c.len())
	require.False(t, c.has(ids[1], t0.Add(3*time.Minute)))
}

func TestClosedSessionsBounded(t *testing.T) {
	t0 := time.Unix(1000, 0)
	c := newClosedSessions(time.Hour)
	id := func(i int) sessionID {
		var s sessionID
		s[0], s[1], s[2] = byte(i), byte(i>>8), byte(i>>16)
		return s
	}
	for i := range maxClosedRemembered + 10 {
		c.add(id(i), t0)
	}
	require.Equal(t, maxClosedRemembered, c.len())
	for i := range 10 {
		require.False(t, c.has(id(i), t0), "oldest %d still remembered", i)
	}
	require.True(t, c.has(id(10), t0))
	require.True(t, c.has(id(maxClosedRemembered+9), t0))
	require.LessOrEqual(t, len(c.queue)-c.head, maxClosedRemembered)
}
