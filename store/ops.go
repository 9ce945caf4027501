package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// jobCols are the columns scanJob reads, in its order; listCols the same
// without the program's source and input.
const (
	jobCols = "id, owner, lang, name, args, source, stdin, stdin IS NOT NULL, limits, max_retries, attempts, state, " +
		"executor, master, lease, lease_until, submitted, started, ended, result, exit_code, reason, stdout_len, stderr_len"
	listCols = "id, owner, lang, name, args, NULL, NULL, stdin IS NOT NULL, limits, max_retries, attempts, state, " +
		"executor, master, lease, lease_until, submitted, started, ended, result, exit_code, reason, stdout_len, stderr_len"
)

// endedStates is the SQL list of final states.
const endedStates = "('finished', 'cancelled', 'failed')"

// scanJob reads one row of jobCols, or of listCols when !full (then
// Source and Stdin stay nil).
func scanJob(sc scanner, full bool) (Job, error) {
	var (
		j                                     Job
		args, state                           string
		hasStdin                              bool
		limits, result                        []byte
		maxRetries, attempts, exitCode        int64
		leaseUntil, submitted, started, ended int64
	)
	err := sc.Scan(&j.ID, &j.Owner, &j.Lang, &j.Name, &args, &j.Source, &j.Stdin, &hasStdin, &limits,
		&maxRetries, &attempts, &state, &j.Executor, &j.Master, &j.Lease, &leaseUntil, &submitted,
		&started, &ended, &result, &exitCode, &j.Reason, &j.StdoutLen, &j.StderrLen)
	if err != nil {
		return Job{}, err
	}
	if err := json.Unmarshal([]byte(args), &j.Args); err != nil {
		return Job{}, fmt.Errorf("store: job %d: arguments: %w", j.ID, err)
	}
	if len(j.Args) == 0 {
		j.Args = nil
	}
	switch {
	case !full:
		j.Source, j.Stdin = nil, nil
	case j.Source == nil:
		j.Source = []byte{}
	}
	switch {
	case !full || !hasStdin:
		j.Stdin = nil
	case j.Stdin == nil:
		j.Stdin = []byte{}
	}
	j.Limits, j.Result = limits, result
	j.MaxRetries, j.Attempts, j.ExitCode = int(maxRetries), int(attempts), int(exitCode)
	j.State = State(state)
	j.LeaseUntil, j.Submitted = fromNanos(leaseUntil), fromNanos(submitted)
	j.Started, j.Ended = fromNanos(started), fromNanos(ended)
	return j, nil
}

// jobRow runs a query for one row of jobCols; no row is ErrNotFound.
func jobRow(ctx context.Context, q querier, id int64, query string, args ...any) (Job, error) {
	j, err := scanJob(q.queryRow(ctx, query, args...), true)
	if errors.Is(err, errNoRows) {
		return Job{}, fmt.Errorf("%w: %d", ErrNotFound, id)
	}
	if err != nil {
		return Job{}, fmt.Errorf("store: job %d: %w", id, err)
	}
	return j, nil
}

// validJSON checks a JSON field given to the store.
func validJSON(what string, b json.RawMessage) error {
	if b != nil && !json.Valid(b) {
		return fmt.Errorf("%w: %s is not valid JSON", ErrInvalid, what)
	}
	return nil
}

// Submit implements Store.
func (s *sqlStore) Submit(ctx context.Context, j Job) (Job, error) {
	switch {
	case j.MaxRetries == 0:
		j.MaxRetries = DefaultMaxRetries
	case j.MaxRetries == NoRetries:
		j.MaxRetries = 0
	case j.MaxRetries < 0:
		return Job{}, fmt.Errorf("%w: MaxRetries %d", ErrInvalid, j.MaxRetries)
	}
	if err := validJSON("Limits", j.Limits); err != nil {
		return Job{}, err
	}
	args, err := json.Marshal(j.Args)
	if err != nil || len(j.Args) == 0 {
		args = []byte("[]")
	}
	if j.Source == nil {
		j.Source = []byte{}
	}
	if len(j.Args) == 0 {
		j.Args = nil
	}
	out := Job{Owner: j.Owner, Lang: j.Lang, Name: j.Name, Args: j.Args, Source: j.Source, Stdin: j.Stdin,
		Limits: j.Limits, MaxRetries: j.MaxRetries, State: Queued, Submitted: stamp(s.now())}
	err = s.b.writeOne(ctx, func(tx wtx) error {
		err := tx.queryRow(ctx, `INSERT INTO jobs (owner, lang, name, args, source, stdin, limits, max_retries, state, submitted)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', $9) RETURNING id`,
			out.Owner, out.Lang, out.Name, string(args), out.Source, blob(out.Stdin), blob(out.Limits),
			out.MaxRetries, toNanos(out.Submitted)).Scan(&out.ID)
		if err != nil {
			return fmt.Errorf("store: submit: %w", err)
		}
		tx.changed(out.ID)
		tx.changed(QueuedJobs)
		return nil
	})
	if err != nil {
		return Job{}, err
	}
	return out, nil
}

// Get implements Store.
func (s *sqlStore) Get(ctx context.Context, id int64) (Job, error) {
	var j Job
	err := s.b.read(ctx, func(q querier) error {
		var err error
		j, err = jobRow(ctx, q, id, "SELECT "+jobCols+" FROM jobs WHERE id = $1", id)
		return err
	})
	return j, err
}

// List implements Store.
func (s *sqlStore) List(ctx context.Context, f Filter) ([]Job, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Owner != "" {
		where = append(where, "owner = "+arg(f.Owner))
	}
	if len(f.States) > 0 {
		var in []string
		for _, st := range f.States {
			if !st.Valid() {
				return nil, fmt.Errorf("%w: state %q", ErrInvalid, st)
			}
			in = append(in, arg(string(st)))
		}
		where = append(where, "state IN ("+strings.Join(in, ", ")+")")
	}
	if len(f.Langs) > 0 {
		var in []string
		for _, l := range f.Langs {
			in = append(in, arg(l))
		}
		where = append(where, "lang IN ("+strings.Join(in, ", ")+")")
	}
	if f.Master != "" {
		where = append(where, "master = "+arg(f.Master))
	}
	if f.Executor != "" {
		where = append(where, "executor = "+arg(f.Executor))
	}
	if f.Before > 0 {
		where = append(where, "id < "+arg(f.Before))
	}
	limit := f.Limit
	switch {
	case limit <= 0:
		limit = DefaultListLimit
	case limit > MaxListLimit:
		limit = MaxListLimit
	}
	query := "SELECT " + listCols + " FROM jobs"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY id DESC LIMIT " + strconv.Itoa(limit)
	var jobs []Job
	err := s.b.read(ctx, func(q querier) error {
		jobs = jobs[:0]
		return q.query(ctx, query, args, func(sc scanner) error {
			j, err := scanJob(sc, false)
			if err != nil {
				return fmt.Errorf("store: list: %w", err)
			}
			jobs = append(jobs, j)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return jobs, nil
}

// Claim implements Store.
func (s *sqlStore) Claim(ctx context.Context, master string, langs []string, leaseFor time.Duration) (Job, error) {
	if leaseFor <= 0 {
		return Job{}, fmt.Errorf("%w: lease of %v", ErrInvalid, leaseFor)
	}
	args := []any{master, toNanos(s.now().Add(leaseFor))}
	filter := ""
	if len(langs) > 0 {
		var in []string
		for _, l := range langs {
			args = append(args, l)
			in = append(in, "$"+strconv.Itoa(len(args)))
		}
		filter = " AND lang IN (" + strings.Join(in, ", ") + ")"
	}
	query := `UPDATE jobs SET state = 'running', master = $1, lease = lease + 1, attempts = attempts + 1,
		lease_until = $2, executor = '', started = 0
		WHERE id = (SELECT id FROM jobs WHERE state = 'queued'` + filter + ` ORDER BY id LIMIT 1` + s.d.skipLocked + `)
		RETURNING ` + jobCols
	var j Job
	err := s.b.writeOne(ctx, func(tx wtx) error {
		var err error
		j, err = scanJob(tx.queryRow(ctx, query, args...), true)
		if errors.Is(err, errNoRows) {
			return ErrNoJob
		}
		if err != nil {
			return fmt.Errorf("store: claim: %w", err)
		}
		tx.changed(j.ID)
		return nil
	})
	return j, err
}

// head is what the lease-fenced operations check of a job, read with its
// row locked.
type head struct {
	state  State
	lease  int64
	owner  string
	length [3]int64 // by Stream
}

// lock reads the job's head, locking its row until the transaction ends.
func (s *sqlStore) lock(ctx context.Context, tx wtx, id int64) (head, error) {
	var (
		h     head
		state string
	)
	err := tx.queryRow(ctx, "SELECT state, lease, owner, stdout_len, stderr_len FROM jobs WHERE id = $1"+s.d.forUpdate, id).
		Scan(&state, &h.lease, &h.owner, &h.length[Stdout], &h.length[Stderr])
	if errors.Is(err, errNoRows) {
		return head{}, fmt.Errorf("%w: %d", ErrNotFound, id)
	}
	if err != nil {
		return head{}, fmt.Errorf("store: job %d: %w", id, err)
	}
	h.state = State(state)
	return h, nil
}

// fence checks that lease is the job's current one and that its state is
// one of allowed.
func (h head) fence(id, lease int64, allowed ...State) error {
	if lease != h.lease {
		return fmt.Errorf("%w: job %d has lease %d, not %d", ErrStaleLease, id, h.lease, lease)
	}
	return h.in(id, allowed...)
}

// in checks that the job's state is one of allowed.
func (h head) in(id int64, allowed ...State) error {
	if !slices.Contains(allowed, h.state) {
		return fmt.Errorf("%w: job %d is %s", ErrState, id, h.state)
	}
	return nil
}

// fenced runs update (a statement returning jobCols) on job id after
// checking its lease and state, and returns the job as updated.
func (s *sqlStore) fenced(ctx context.Context, id, lease int64, allowed []State, update string, args ...any) (Job, error) {
	var j Job
	err := s.b.write(ctx, func(tx wtx) error {
		h, err := s.lock(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := h.fence(id, lease, allowed...); err != nil {
			return err
		}
		j, err = jobRow(ctx, tx, id, update, append([]any{id}, args...)...)
		if err != nil {
			return err
		}
		tx.changed(id)
		return nil
	})
	return j, err
}

// Assign implements Store.
func (s *sqlStore) Assign(ctx context.Context, id, lease int64, executor string) (Job, error) {
	return s.fenced(ctx, id, lease, []State{Running},
		"UPDATE jobs SET executor = $2, started = $3 WHERE id = $1 RETURNING "+jobCols,
		executor, toNanos(s.now()))
}

// Renew implements Store.
func (s *sqlStore) Renew(ctx context.Context, id, lease int64, until time.Time) error {
	_, err := s.fenced(ctx, id, lease, []State{Running},
		"UPDATE jobs SET lease_until = $2 WHERE id = $1 RETURNING "+jobCols, toNanos(until))
	return err
}

// Fail implements Store.
func (s *sqlStore) Fail(ctx context.Context, id, lease int64, reason string) (Job, error) {
	return s.fenced(ctx, id, lease, []State{Running, Queued},
		"UPDATE jobs SET state = 'failed', reason = $2, ended = $3, lease_until = 0 WHERE id = $1 RETURNING "+jobCols,
		reason, toNanos(s.now()))
}

// Finish implements Store.
func (s *sqlStore) Finish(ctx context.Context, id, lease int64, exitCode int, result json.RawMessage) (Job, error) {
	if err := validJSON("result", result); err != nil {
		return Job{}, err
	}
	var j Job
	var done bool
	err := s.b.write(ctx, func(tx wtx) error {
		h, err := s.lock(ctx, tx, id)
		if err != nil {
			return err
		}
		if h.lease == lease && h.state == Finished {
			j, err = jobRow(ctx, tx, id, "SELECT "+jobCols+" FROM jobs WHERE id = $1", id)
			done = err == nil
			return err
		}
		if err := h.fence(id, lease, Running); err != nil {
			return err
		}
		j, err = jobRow(ctx, tx, id, `UPDATE jobs SET state = 'finished', exit_code = $2, result = $3, ended = $4,
			lease_until = 0 WHERE id = $1 RETURNING `+jobCols, id, exitCode, blob(result), toNanos(s.now()))
		if err != nil {
			return err
		}
		tx.changed(id)
		return nil
	})
	if err == nil && done {
		err = fmt.Errorf("%w: job %d", ErrAlreadyDone, id)
	}
	return j, err
}

// Cancel implements Store.
func (s *sqlStore) Cancel(ctx context.Context, id int64, owner, reason string) (Job, error) {
	var before Job
	err := s.b.write(ctx, func(tx wtx) error {
		j, err := jobRow(ctx, tx, id, "SELECT "+jobCols+" FROM jobs WHERE id = $1"+s.d.forUpdate, id)
		if err != nil {
			return err
		}
		if owner != "" && owner != j.Owner {
			return fmt.Errorf("%w: %d", ErrNotFound, id)
		}
		if err := (head{state: j.State}).in(id, Queued, Running); err != nil {
			return err
		}
		_, err = tx.exec(ctx, "UPDATE jobs SET state = 'cancelled', reason = $2, ended = $3, lease_until = 0 WHERE id = $1",
			id, reason, toNanos(s.now()))
		if err != nil {
			return fmt.Errorf("store: cancel %d: %w", id, err)
		}
		before = j
		tx.changed(id)
		return nil
	})
	return before, err
}

// expireBatch is how many expired jobs one statement of Expire takes.
const expireBatch = 500

// Expire implements Store.
func (s *sqlStore) Expire(ctx context.Context, now time.Time) ([]Job, error) {
	var changed []Job
	for {
		var batch []Job
		err := s.b.write(ctx, func(tx wtx) error {
			batch = batch[:0]
			type lost struct {
				id                   int64
				attempts, maxRetries int64
			}
			var found []lost
			err := tx.query(ctx, `SELECT id, attempts, max_retries FROM jobs WHERE state = 'running' AND lease_until < $1
				ORDER BY id LIMIT `+strconv.Itoa(expireBatch)+s.d.skipLocked, []any{toNanos(now)},
				func(sc scanner) error {
					var l lost
					if err := sc.Scan(&l.id, &l.attempts, &l.maxRetries); err != nil {
						return err
					}
					found = append(found, l)
					return nil
				})
			if err != nil {
				return fmt.Errorf("store: expire: %w", err)
			}
			for _, l := range found {
				var j Job
				if l.attempts <= l.maxRetries {
					if _, err := tx.exec(ctx, "DELETE FROM output WHERE job_id = $1", l.id); err != nil {
						return fmt.Errorf("store: expire %d: %w", l.id, err)
					}
					j, err = jobRow(ctx, tx, l.id, `UPDATE jobs SET state = 'queued', lease = lease + 1, master = '',
						executor = '', lease_until = 0, started = 0, stdout_len = 0, stderr_len = 0
						WHERE id = $1 RETURNING `+jobCols, l.id)
				} else {
					j, err = jobRow(ctx, tx, l.id, `UPDATE jobs SET state = 'failed', lease = lease + 1, reason = $2,
						ended = $3, lease_until = 0 WHERE id = $1 RETURNING `+jobCols,
						l.id, ReasonExecutorLost, toNanos(s.now()))
				}
				if err != nil {
					return err
				}
				tx.changed(l.id)
				if j.State == Queued {
					tx.changed(QueuedJobs)
				}
				batch = append(batch, j)
			}
			return nil
		})
		if err != nil {
			return changed, err
		}
		changed = append(changed, batch...)
		if len(batch) < expireBatch {
			return changed, nil
		}
	}
}

// purgeBatch is how many jobs one transaction of Purge removes.
const purgeBatch = 500

// Purge implements Store.
func (s *sqlStore) Purge(ctx context.Context, olderThan time.Time) (int, error) {
	total := 0
	for {
		n := 0
		err := s.b.write(ctx, func(tx wtx) error {
			n = 0
			return tx.query(ctx, `DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state IN `+endedStates+`
				AND ended < $1 ORDER BY id LIMIT `+strconv.Itoa(purgeBatch)+`) RETURNING id`, []any{toNanos(olderThan)},
				func(sc scanner) error {
					var id int64
					if err := sc.Scan(&id); err != nil {
						return fmt.Errorf("store: purge: %w", err)
					}
					n++
					tx.changed(id)
					return nil
				})
		})
		total += n
		if err != nil || n < purgeBatch {
			return total, err
		}
	}
}
