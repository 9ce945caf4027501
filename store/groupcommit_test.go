package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Operations queued while the writer is busy are committed together in
// one transaction, and one that fails after writing undoes only its own
// writes: the others' are kept, and each caller gets its own outcome.
func TestGroupCommit(t *testing.T) {
	s, err := Open(ctx, filepath.Join(t.TempDir(), "jobs.db"), nil)
	require.NoError(t, err)
	defer s.Close()
	b := s.(*sqlStore).b.(*sqliteBackend)

	// Hold the writer so that the next operations queue up.
	busy, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- b.write(ctx, func(wtx) error {
			close(busy)
			<-release
			return nil
		})
	}()
	<-busy

	const n = 100
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		txs     = map[*sql.Tx]bool{}
		outcome = make([]error, n)
		failed  = errors.New("this operation fails after writing")
	)
	cancelled, cancel := context.WithCancel(ctx)
	for i := range n {
		wg.Add(1)
		opCtx := ctx
		if i == n-2 {
			opCtx = cancelled
		}
		go func() {
			defer wg.Done()
			outcome[i] = b.write(opCtx, func(tx wtx) error {
				mu.Lock()
				txs[tx.(*sqliteTx).r.(cachedTx).tx] = true
				mu.Unlock()
				if _, err := tx.exec(ctx, `INSERT INTO jobs (owner, lang, name, args, source, max_retries, state, submitted)
					VALUES ($1, 'sh', 'x.sh', '[]', x'', 0, 'queued', 1)`, "op"+string(rune('A'+i%2))); err != nil {
					return err
				}
				if i%2 == 1 {
					return failed
				}
				return nil
			})
		}()
	}
	// Every operation is queued (they are the writer's only input).
	require.Eventually(t, func() bool { return len(b.reqs) == n }, waitFor, pollEvery)
	cancel()
	close(release)
	wg.Wait()
	require.NoError(t, <-held)

	assert.Len(t, txs, 1, "one transaction for the whole batch")
	for i, err := range outcome {
		switch {
		case i == n-2:
			assert.ErrorIs(t, err, context.Canceled)
		case i%2 == 1:
			assert.ErrorIs(t, err, failed)
		default:
			assert.NoError(t, err)
		}
	}
	kept, err := s.List(ctx, Filter{Limit: MaxListLimit})
	require.NoError(t, err)
	assert.Equal(t, n/2-1, len(kept), "the even operations but the cancelled one")
	for _, j := range kept {
		assert.Equal(t, "opA", j.Owner)
	}
}

// An operation the writer runs is never reported as canceled while it
// runs: write returns once the writer says how it went (it once returned
// at the context's end while the operation went on, racing with its
// caller, and could commit after the caller was told it had not).
func TestWriteWaitsForTheWriter(t *testing.T) {
	s, err := Open(ctx, filepath.Join(t.TempDir(), "jobs.db"), nil)
	require.NoError(t, err)
	defer s.Close()
	b := s.(*sqlStore).b.(*sqliteBackend)

	opCtx, cancel := context.WithCancel(ctx)
	running, release := make(chan struct{}), make(chan struct{})
	ran := false
	done := make(chan error, 1)
	go func() {
		done <- b.write(opCtx, func(wtx) error {
			close(running)
			<-release
			ran = true
			return nil
		})
	}()
	<-running
	cancel()
	// Not an event to wait for but one that must not come: give write a
	// moment to return wrongly.
	select {
	case err := <-done:
		t.Fatalf("write returned %v while its operation ran", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	require.NoError(t, <-done, "the operation ran and committed")
	assert.True(t, ran)
}
