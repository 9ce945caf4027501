package scheduler

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/proto"
	"resh/store"
	"resh/store/pgtest"
)

// Two masters' Schedulers on one PostgreSQL database run each job once:
// every job submitted to either is claimed by one of them, run, and
// finished exactly once.
func TestTwoMastersOnePostgres(t *testing.T) {
	url := pgtest.Start(t)
	ctx := context.Background()
	const jobs = 30
	var hs []*harness
	for i := range 2 {
		st, err := store.Open(ctx, url, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		fc := newFakeCluster()
		fc.addExecutor(fmt.Sprintf("m%d-e", i), 4, "python")
		hs = append(hs, startOn(t, st, fc, Config{Name: fmt.Sprintf("m%d", i)}))
	}
	// Each fake executor ends every job it is given at once.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	ran := make([]map[int64]int, 2)
	for i, h := range hs {
		ran[i] = map[int64]int{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen := 0
			for {
				h.fc.mu.Lock()
				runs := h.fc.runs[seen:]
				ch := h.fc.changed
				h.fc.mu.Unlock()
				for _, c := range runs {
					seen++
					ran[i][c.id]++
					c.out(1, 0, fmt.Sprint(c.id))
					c.end(okEnd(c.executor))
				}
				select {
				case <-ch:
				case <-stop:
					return
				}
			}
		}()
	}
	var ids []int64
	for n := range jobs {
		j, err := hs[n%2].s.Submit(ctx, owner, proto.Job{Lang: "python"}, []byte("x"), nil)
		require.NoError(t, err)
		ids = append(ids, j.ID)
	}
	for _, id := range ids {
		got := hs[0].waitJob(id, "finished", func(j store.Job) bool { return j.State == store.Finished })
		assert.Equal(t, 1, got.Attempts)
		assert.Equal(t, int64(len(fmt.Sprint(id))), got.StdoutLen)
	}
	close(stop)
	wg.Wait()
	for _, id := range ids {
		assert.Equal(t, 1, ran[0][id]+ran[1][id], "job %d ran once", id)
	}
	t.Logf("master 0 ran %d jobs, master 1 ran %d", len(ran[0]), len(ran[1]))
}
