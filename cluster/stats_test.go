package cluster_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/cluster"
)

func TestWaitingCountsTheQueue(t *testing.T) {
	m := newMaster(t, cluster.Config{})
	assert.Equal(t, 0, m.Waiting())
	join(t, m, "one", 1, nil)
	first := place(t, m, cluster.Task{})
	assert.Equal(t, 0, m.Waiting(), "placed at once: not waiting")

	queued := make(chan int, 8)
	placed := make(chan *cluster.Placement, 1)
	go func() {
		p, err := m.Place(context.Background(), cluster.Task{}, func(n int) { queued <- n })
		assert.NoError(t, err)
		placed <- p
	}()
	require.Equal(t, 0, <-queued)
	assert.Equal(t, 1, m.Waiting())
	first.Done()
	p := <-placed
	assert.Equal(t, 0, m.Waiting())
	p.Done()
}
