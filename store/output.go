package store

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// chunkSize bounds the bytes in one row of the output table: a long
// append is stored as several rows.
const chunkSize = 64 << 10

// lengthCol is the jobs column holding each stream's stored length.
var lengthCol = [3]string{Stdout: "stdout_len", Stderr: "stderr_len"}

// appendPlan decides what of n bytes sent for offset to store on a
// stream that holds length bytes and keeps at most limit (<= 0: no
// limit): the first skip bytes are stored already, the next add bytes are
// to be stored at length. ErrGap when offset is beyond length.
func appendPlan(length, offset int64, n int, limit int64) (skip, add int, err error) {
	switch {
	case offset < 0 || n < 0 || length < 0:
		return 0, 0, fmt.Errorf("%w: offset %d, %d bytes", ErrInvalid, offset, n)
	case offset > math.MaxInt64-int64(n):
		return 0, 0, fmt.Errorf("%w: offset %d + %d bytes overflows", ErrInvalid, offset, n)
	case offset > length:
		return 0, 0, fmt.Errorf("%w: offset %d, %d bytes stored", ErrGap, offset, length)
	}
	skip = int(min(length-offset, int64(n)))
	add = n - skip
	if limit > 0 {
		add = int(min(int64(add), max(limit-length, 0)))
	}
	return skip, add, nil
}

// AppendOutput implements Store.
func (s *sqlStore) AppendOutput(ctx context.Context, id, lease int64, st Stream, offset int64, data []byte, limit int64) (int, error) {
	if !st.valid() {
		return 0, fmt.Errorf("%w: stream %d", ErrInvalid, st)
	}
	if _, _, err := appendPlan(offset, offset, len(data), 0); err != nil {
		return 0, err
	}
	kept := 0
	err := s.b.write(ctx, func(tx wtx) error {
		h, err := s.lock(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := h.fence(id, lease, Running); err != nil {
			return err
		}
		length := h.length[st]
		skip, add, err := appendPlan(length, offset, len(data), limit)
		if err != nil {
			return fmt.Errorf("%w (job %d %s)", err, id, st)
		}
		kept = skip + add
		if add == 0 {
			return nil
		}
		tail := data[skip : skip+add]
		for len(tail) > 0 {
			c := tail[:min(len(tail), chunkSize)]
			if _, err := tx.exec(ctx, "INSERT INTO output (job_id, stream, off, data) VALUES ($1, $2, $3, $4)",
				id, int(st), length, c); err != nil {
				return fmt.Errorf("store: output of job %d: %w", id, err)
			}
			length += int64(len(c))
			tail = tail[len(c):]
		}
		if _, err := tx.exec(ctx, "UPDATE jobs SET "+lengthCol[st]+" = $2 WHERE id = $1", id, length); err != nil {
			return fmt.Errorf("store: output of job %d: %w", id, err)
		}
		tx.changed(id)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return kept, nil
}

// ReadOutput implements Store.
func (s *sqlStore) ReadOutput(ctx context.Context, id int64, st Stream, from int64, maxBytes int) ([]byte, int64, int64, error) {
	if !st.valid() {
		return nil, 0, 0, fmt.Errorf("%w: stream %d", ErrInvalid, st)
	}
	if from < 0 {
		return nil, 0, 0, fmt.Errorf("%w: offset %d", ErrInvalid, from)
	}
	if maxBytes <= 0 {
		maxBytes = DefaultReadMax
	}
	var (
		data          []byte
		length, lease int64
	)
	err := s.b.read(ctx, func(q querier) error {
		data = nil
		err := q.queryRow(ctx, "SELECT "+lengthCol[st]+", lease FROM jobs WHERE id = $1", id).Scan(&length, &lease)
		if errors.Is(err, errNoRows) {
			return fmt.Errorf("%w: %d", ErrNotFound, id)
		}
		if err != nil {
			return fmt.Errorf("store: output of job %d: %w", id, err)
		}
		if from >= length {
			return nil
		}
		end := from + min(int64(maxBytes), length-from)
		data = make([]byte, 0, end-from)
		// The chunks overlapping [from, end): from the last one starting
		// at or before from.
		return q.query(ctx, `SELECT off, data FROM output WHERE job_id = $1 AND stream = $2 AND off < $3
			AND off >= COALESCE((SELECT MAX(off) FROM output WHERE job_id = $1 AND stream = $2 AND off <= $4), 0)
			ORDER BY off`, []any{id, int(st), end, from}, func(sc scanner) error {
			var (
				off   int64
				chunk []byte
			)
			if err := sc.Scan(&off, &chunk); err != nil {
				return fmt.Errorf("store: output of job %d: %w", id, err)
			}
			a, b := max(off, from), min(off+int64(len(chunk)), end)
			if a >= b {
				return nil
			}
			if a != from+int64(len(data)) {
				return fmt.Errorf("store: output of job %d %s: chunk at %d where %d was expected", id, st, a, from+int64(len(data)))
			}
			data = append(data, chunk[a-off:b-off]...)
			return nil
		})
	})
	if err != nil {
		return nil, 0, 0, err
	}
	if int64(len(data)) != min(int64(maxBytes), max(length-from, 0)) {
		return nil, 0, 0, fmt.Errorf("store: output of job %d %s: %d bytes found of %d stored", id, st, from+int64(len(data)), length)
	}
	return data, length, lease, nil
}
