package store

import (
	"context"
	"fmt"
)

// Count implements Store. One query, GROUP BY state, which both databases
// answer from the index jobs_state (state, id) alone (SQLite: "SCAN jobs
// USING COVERING INDEX jobs_state"; PostgreSQL: an index-only scan once
// the table is vacuumed), without reading a job's row. It still visits
// one index entry per job kept, so its cost grows with them until Purge
// removes the ended ones: about 0.1 s per million jobs (the sqlite3 shell
// on a 2-CPU machine), nothing at a scrape's pace for the thousands a
// master keeps.
func (s *sqlStore) Count(ctx context.Context) (map[State]int, error) {
	n := make(map[State]int, len(states))
	for _, st := range states {
		n[st] = 0
	}
	err := s.b.read(ctx, func(q querier) error {
		for _, st := range states {
			n[st] = 0 // read may run fn again
		}
		return q.query(ctx, "SELECT state, COUNT(*) FROM jobs GROUP BY state", nil, func(sc scanner) error {
			var (
				st    string
				count int64
			)
			if err := sc.Scan(&st, &count); err != nil {
				return fmt.Errorf("store: count: %w", err)
			}
			n[State(st)] = int(count)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return n, nil
}
