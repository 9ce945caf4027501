package store

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// crashChildEnv, set to a database path, makes the test binary a crash
// child: it submits jobs to that SQLite store from several goroutines
// and prints each id once its Submit returned, until killed.
const crashChildEnv = "RESH_STORE_CRASH_CHILD"

// crashChild is the child's loop; it never returns normally.
func crashChild(path string) {
	s, err := Open(context.Background(), path, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	for range 8 {
		go func() {
			for {
				j, err := s.Submit(context.Background(), hello("crash"))
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(out, "%d\n", j.ID)
				out.Flush() // written to the pipe before the next line
				mu.Unlock()
			}
		}()
	}
	select {}
}

// A child submitting as fast as it can is killed with SIGKILL at random
// moments (while creating the file, migrating, committing): the store
// always opens again, passes SQLite's integrity check, and holds every
// job whose Submit had returned.
func TestCrashSQLite(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "jobs.db")
	acked := map[int64]bool{}
	deadline := time.Now().Add(40 * time.Second)
	rounds := 0
	for ; rounds < 20 && time.Now().Before(deadline); rounds++ {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		var stderr lockedBuffer
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Start())
		lines := make(chan []int64, 1)
		go func() {
			var ids []int64
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if id, err := strconv.ParseInt(sc.Text(), 10, 64); err == nil {
					ids = append(ids, id)
				}
			}
			lines <- ids
		}()
		// Kill at a random moment in the first 400 ms (the child takes
		// some of them to start).
		kill := time.NewTimer(time.Duration(rand.IntN(400)) * time.Millisecond)
		<-kill.C
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		ids := <-lines // a line cut by the kill does not parse fully: see below
		werr := cmd.Wait()
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		require.True(t, ws.Signaled(), "the child ended before it was killed: %v: %s", werr, stderr.String())
		for _, id := range ids {
			acked[id] = true
		}

		s, err := Open(context.Background(), path, nil)
		require.NoError(t, err, "round %d", rounds)
		stored := map[int64]bool{}
		for before := int64(0); ; {
			page, err := s.List(context.Background(), Filter{Limit: MaxListLimit, Before: before})
			require.NoError(t, err)
			if len(page) == 0 {
				break
			}
			for _, j := range page {
				stored[j.ID] = true
				assert.Equal(t, Queued, j.State)
			}
			before = page[len(page)-1].ID
		}
		for id := range acked {
			assert.True(t, stored[id], "round %d: acknowledged job %d lost", rounds, id)
		}
		if len(ids) > 0 {
			j, err := s.Get(context.Background(), ids[len(ids)-1])
			require.NoError(t, err)
			assert.Equal(t, hello("crash").Source, j.Source)
		}
		require.NoError(t, s.Close())
		require.Equal(t, "ok", integrityCheck(t, path), "round %d", rounds)
	}
	t.Logf("%d rounds, %d acknowledged jobs, all kept", rounds, len(acked))
	assert.GreaterOrEqual(t, rounds, 5)
	assert.NotEmpty(t, acked)
}

// integrityCheck runs PRAGMA integrity_check on the SQLite file.
func integrityCheck(t *testing.T, path string) string {
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close()
	var res string
	require.NoError(t, db.QueryRow("PRAGMA integrity_check").Scan(&res))
	return res
}

// lockedBuffer is a bytes.Buffer safe for the child's stderr copier and
// the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
