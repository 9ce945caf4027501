package store

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"
)

// Store keeps jobs durably. The lease-fenced methods (Assign, Renew,
// AppendOutput, Finish, Fail) change nothing and return ErrStaleLease
// when lease is not the job's current one, and ErrState when the job's
// state does not allow them; any method returns ErrNotFound for an
// unknown id. Every method that changes a job has committed
// the change (per the backend's durability, see the package
// documentation) when it returns without error; after an error nothing
// was changed, except when the error is the context's: then the change
// may or may not have been made. Methods are safe for concurrent use, and
// several Store values (in one process or several) may share one
// database.
type Store interface {
	// Submit stores a new queued job from the given fields of j (see
	// Job) and returns it as stored, with its ID.
	Submit(ctx context.Context, j Job) (Job, error)
	// Get returns the job with this id, Source and Stdin included.
	Get(ctx context.Context, id int64) (Job, error)
	// List returns the jobs f selects, newest first, without their
	// Source and Stdin.
	List(ctx context.Context, f Filter) ([]Job, error)

	// Claim takes the oldest queued job whose language is one of langs
	// (any language when langs is empty) for master: it becomes running
	// with a new Lease and Attempts+1, and LeaseUntil leaseFor from now.
	// It returns the whole job (Source and Stdin included). No two
	// claims, whichever the Store value, get the same job. ErrNoJob when
	// none is queued.
	Claim(ctx context.Context, master string, langs []string, leaseFor time.Duration) (Job, error)
	// Assign records the executor the running job was placed on, and
	// sets Started.
	Assign(ctx context.Context, id, lease int64, executor string) (Job, error)
	// Renew moves the running job's LeaseUntil to until.
	Renew(ctx context.Context, id, lease int64, until time.Time) error
	// AppendOutput stores data as the bytes of the running job's stream
	// s from offset on. Bytes already stored are not stored again (a
	// resend is harmless); an offset beyond the stored length is ErrGap.
	// At most limit bytes are kept per stream (limit <= 0: no limit).
	// It returns how many bytes of data, from its start, are now stored:
	// less than len(data) means the limit cut the rest.
	AppendOutput(ctx context.Context, id, lease int64, s Stream, offset int64, data []byte, limit int64) (kept int, err error)
	// ReadOutput returns up to max bytes (max <= 0: up to
	// DefaultReadMax) of the job's stream s from offset from on, the
	// stream's stored length, and the job's Lease, all as of one moment:
	// the bytes are those of the attempt that lease names. Reading at or
	// past the length returns no bytes. It works in every state, live
	// while the job runs.
	ReadOutput(ctx context.Context, id int64, s Stream, from int64, max int) (data []byte, length, lease int64, err error)
	// Finish ends the running job as finished with its exit code and
	// verdict. Exactly once: a second Finish with the same lease returns
	// the stored job and ErrAlreadyDone.
	Finish(ctx context.Context, id, lease int64, exitCode int, result json.RawMessage) (Job, error)
	// Fail ends the running or queued job as failed with reason. lease
	// is the job's current Lease (as Get shows it for a queued job).
	Fail(ctx context.Context, id, lease int64, reason string) (Job, error)
	// Cancel ends the queued or running job as cancelled with reason.
	// With owner != "" only that owner's job is found. It returns the job
	// as it was before, so that the caller can stop it where it runs.
	Cancel(ctx context.Context, id int64, owner, reason string) (Job, error)
	// Expire takes back every running job whose LeaseUntil is before
	// now: back to queued (its output discarded, a new Lease) when
	// Attempts <= MaxRetries (it may run again: at most 1+MaxRetries
	// runs in all), else failed with ReasonExecutorLost (a new Lease
	// too). It returns the jobs it changed, as they are now. Two Expire
	// calls at once (any Store values) never handle the same job.
	Expire(ctx context.Context, now time.Time) ([]Job, error)
	// Count returns how many jobs are in each state, every State present
	// (0 for none). It reads the jobs at one instant.
	Count(ctx context.Context) (map[State]int, error)
	// Purge removes the ended jobs (finished, cancelled, failed) that
	// ended before olderThan, with their output, and returns how many.
	Purge(ctx context.Context, olderThan time.Time) (int, error)

	// Watch returns a channel that receives a value after the job (id >
	// 0) or any job (id 0) changed, or (QueuedJobs) after a job became
	// queued; see the package documentation. Call
	// stop when done: it releases the channel (never closed).
	Watch(id int64) (changed <-chan struct{}, stop func())

	// Close releases the store. Calls after it return ErrClosed.
	Close() error
}

// DefaultReadMax is how many bytes ReadOutput returns at most when asked
// for max <= 0.
const DefaultReadMax = 1 << 20

// DefaultFile is the SQLite file Open uses in Options.Dir for an empty
// URL.
const DefaultFile = "jobs.db"

// Options tune Open. A nil *Options means the defaults.
type Options struct {
	// Dir is where an empty URL puts the SQLite database (as
	// DefaultFile), e.g. RESH_HOME. With Dir empty, an empty URL is an
	// error.
	Dir string
	// Now is the clock (nil: time.Now). Claim's LeaseUntil and every
	// time the store records come from it.
	Now func() time.Time
	// Logger gets the store's rare warnings (nil: slog.Default()).
	Logger *slog.Logger
	// MaxBatch bounds how many operations SQLite's writer commits in one
	// transaction (group commit); 0 means 256.
	MaxBatch int
}

// withDefaults returns a copy of o (nil allowed) with defaults in place.
func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 256
	}
	return c
}

// Open opens (creating and migrating it on first use) the store at url:
//
//   - "" (with Options.Dir set), a file path, or sqlite:PATH: SQLite, in
//     WAL mode, synchronous=FULL, foreign keys on;
//   - postgres://... or postgresql://...: PostgreSQL (a pgx connection
//     string; the database must exist).
//
// The schema is migrated in one transaction; several processes may Open
// the same database at once.
func Open(ctx context.Context, url string, opts *Options) (Store, error) {
	o := opts.withDefaults()
	kind, target, err := parseURL(url, o.Dir)
	if err != nil {
		return nil, err
	}
	if kind == kindPostgres {
		return openPostgres(ctx, target, o)
	}
	return openSQLite(ctx, target, o)
}
