package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"resh/store/pgtest"
)

// durablePG are the settings of the benchmarks' PostgreSQL: its
// defaults, every commit synced (the tests' server does not sync).
var durablePG = []string{"fsync=on", "synchronous_commit=on", "full_page_writes=on"}

// submitters is how many goroutines per GOMAXPROCS submit at once.
const submitters = 16

// BenchmarkSubmit measures acknowledged submissions per second from
// concurrent submitters, through the Store (SQLite: group commit), and
// the raw baseline: the same row INSERTed in a transaction of its own
// with the same durability (SQLite: WAL, synchronous=FULL).
func BenchmarkSubmit(b *testing.B) {
	job := hello("alice")
	args, _ := json.Marshal(job.Args)
	insert := `INSERT INTO jobs (owner, lang, name, args, source, stdin, limits, max_retries, state, submitted)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', $9)`
	row := func() []any {
		return []any{job.Owner, job.Lang, job.Name, string(args), job.Source, nil, []byte(job.Limits), 1, time.Now().UnixNano()}
	}
	store := func(b *testing.B, url string) {
		s, err := Open(context.Background(), url, nil)
		require.NoError(b, err)
		defer s.Close()
		b.SetParallelism(submitters)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Submit(context.Background(), job); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "submits/s")
	}
	b.Run("sqlite", func(b *testing.B) { store(b, filepath.Join(b.TempDir(), "jobs.db")) })
	b.Run("sqlite-raw", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "jobs.db")
		s, err := Open(context.Background(), path, nil) // the schema
		require.NoError(b, err)
		require.NoError(b, s.Close())
		db, err := sql.Open("sqlite", path+sqliteParams+"&_journal_mode=WAL&_synchronous=FULL&_foreign_keys=1&_txlock=immediate")
		require.NoError(b, err)
		defer db.Close()
		db.SetMaxOpenConns(1)
		b.SetParallelism(submitters)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				tx, err := db.Begin()
				if err == nil {
					if _, err = tx.Exec(insert, row()...); err == nil {
						err = tx.Commit()
					}
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "submits/s")
	})
	b.Run("postgres", func(b *testing.B) { store(b, pgtest.Start(b, durablePG...)) })
	b.Run("postgres-raw", func(b *testing.B) {
		url := pgtest.Start(b, durablePG...)
		s, err := Open(context.Background(), url, nil) // the schema
		require.NoError(b, err)
		require.NoError(b, s.Close())
		pool, err := pgxpool.New(context.Background(), url)
		require.NoError(b, err)
		defer pool.Close()
		b.SetParallelism(submitters)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := pool.Exec(context.Background(), insert, row()...); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "submits/s")
	})
}

// BenchmarkJobSize measures the store's size per job: a typical hello.py
// job, claimed, with 1 KiB of output, finished. Run it with enough jobs
// for the fixed cost to vanish, e.g. -benchtime=5000x.
func BenchmarkJobSize(b *testing.B) {
	out := make([]byte, 1024)
	for i := range out {
		out[i] = "hello, world\n"[i%13]
	}
	life := func(b *testing.B, s Store) {
		ctx := context.Background()
		for range b.N {
			_, err := s.Submit(ctx, hello("SHA256:4bC2oM0uMx1fV6RrQ2e9Xg0mP3nFh0yq7tVw1sJk2aE"))
			require.NoError(b, err)
			j, err := s.Claim(ctx, "master-1", nil, time.Minute)
			require.NoError(b, err)
			_, err = s.Assign(ctx, j.ID, j.Lease, "executor-1")
			require.NoError(b, err)
			_, err = s.AppendOutput(ctx, j.ID, j.Lease, Stdout, 0, out, 0)
			require.NoError(b, err)
			_, err = s.Finish(ctx, j.ID, j.Lease, 0, []byte(`{"verdict":"OK","status":0,"wall_ms":21,"cpu_ms":18,"mem_kb":9120}`))
			require.NoError(b, err)
		}
	}
	b.Run("sqlite", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "jobs.db")
		s, err := Open(context.Background(), path, nil)
		require.NoError(b, err)
		size := func() int64 {
			db, err := sql.Open("sqlite", path)
			require.NoError(b, err)
			defer db.Close()
			_, err = db.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
			require.NoError(b, err)
			fi, err := os.Stat(path)
			require.NoError(b, err)
			return fi.Size()
		}
		base := size()
		b.ResetTimer()
		life(b, s)
		b.StopTimer()
		require.NoError(b, s.Close())
		b.ReportMetric(float64(size()-base)/float64(b.N), "bytes/job")
	})
	b.Run("postgres", func(b *testing.B) {
		url := pgtest.Start(b)
		s, err := Open(context.Background(), url, nil)
		require.NoError(b, err)
		defer s.Close()
		pool, err := pgxpool.New(context.Background(), url)
		require.NoError(b, err)
		defer pool.Close()
		size := func() int64 {
			var n int64
			_, err := pool.Exec(context.Background(), "CHECKPOINT")
			require.NoError(b, err)
			require.NoError(b, pool.QueryRow(context.Background(), "SELECT pg_database_size(current_database())").Scan(&n))
			return n
		}
		base := size()
		b.ResetTimer()
		life(b, s)
		b.StopTimer()
		b.ReportMetric(float64(size()-base)/float64(b.N), "bytes/job")
	})
}

// BenchmarkAppendOutput measures output appends of 1 KiB per second,
// from concurrent running jobs (one per submitter), as executors stream
// it.
func BenchmarkAppendOutput(b *testing.B) {
	chunk := make([]byte, 1024)
	run := func(b *testing.B, url string) {
		s, err := Open(context.Background(), url, nil)
		require.NoError(b, err)
		defer s.Close()
		b.SetParallelism(submitters)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			if _, err := s.Submit(ctx, hello("alice")); err != nil {
				b.Error(err)
				return
			}
			j, err := s.Claim(ctx, "m", nil, time.Hour)
			if err != nil {
				b.Error(err)
				return
			}
			for off := int64(0); pb.Next(); off += int64(len(chunk)) {
				if _, err := s.AppendOutput(ctx, j.ID, j.Lease, Stdout, off, chunk, 0); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	}
	b.Run("sqlite", func(b *testing.B) { run(b, filepath.Join(b.TempDir(), "jobs.db")) })
	b.Run("postgres", func(b *testing.B) { run(b, pgtest.Start(b, durablePG...)) })
}
