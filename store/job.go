package store

import (
	"encoding/json"
	"time"
)

// State is where a job is in its life. A job starts queued; the other
// transitions are in the package documentation and spec.md.
type State string

// The states of a job.
const (
	// Queued: waiting for a master to claim it.
	Queued State = "queued"
	// Running: claimed by a master under a lease, placed (or being
	// placed) on an executor.
	Running State = "running"
	// Finished: ran to its end; Result, ExitCode and Ended are set.
	Finished State = "finished"
	// Cancelled: cancelled by its owner or an administrator before it
	// ended; Reason says why.
	Cancelled State = "cancelled"
	// Failed: could not be run to its end (its executor was lost too
	// often, or the master failed it); Reason says why.
	Failed State = "failed"
)

// states lists every State, in the order of a job's life.
var states = []State{Queued, Running, Finished, Cancelled, Failed}

// Valid reports whether s is one of the five states.
func (s State) Valid() bool {
	for _, v := range states {
		if s == v {
			return true
		}
	}
	return false
}

// Ended reports whether s is a final state: finished, cancelled or
// failed. A job in a final state never changes again (Purge removes it).
func (s State) Ended() bool { return s == Finished || s == Cancelled || s == Failed }

// ReasonExecutorLost is the Reason of a job failed by Expire: its lease
// ran out more often than its retries allow.
const ReasonExecutorLost = "EXECUTOR_LOST"

// DefaultMaxRetries is the MaxRetries a job is submitted with when it
// asks for 0; NoRetries asks for none.
const (
	DefaultMaxRetries = 1
	NoRetries         = -1
)

// Job is one submitted program and what became of it. Submit reads the
// fields marked "given"; every other field is the store's.
type Job struct {
	// ID is the job's number, given by the database at Submit: small,
	// increasing, never reused, unique across every master sharing one
	// database.
	ID int64
	// Owner is who submitted it (given): the fingerprint of the client's
	// key. Cancel and List can be restricted to one owner.
	Owner string
	// Lang is the language's name (given), e.g. "python".
	Lang string
	// Name is the program's file name (given), e.g. "hello.py".
	Name string
	// Args are the program's arguments (given).
	Args []string
	// Source is the program's text (given). List leaves it nil.
	Source []byte
	// Stdin is the program's standard input (given); nil means none, and
	// is kept apart from an empty input. List leaves it nil.
	Stdin []byte
	// Limits are the job's limits as JSON (given), opaque to the store;
	// nil means none were asked for.
	Limits json.RawMessage
	// MaxRetries is how many times the job is run again after its
	// executor was lost (given): 0 at Submit means DefaultMaxRetries,
	// NoRetries means none. The stored value is what applies (0 for none).
	MaxRetries int
	// Attempts counts the claims of the job: 1 while it runs the first
	// time.
	Attempts int
	// State is where the job is.
	State State
	// Executor is the executor the job was assigned to in its current
	// (or, once ended, last) attempt; "" before Assign and while queued.
	Executor string
	// Master is the master that claimed the job in its current (or, once
	// ended, last) attempt; "" while queued.
	Master string
	// Lease is the job's fencing token: it increases at every Claim and
	// whenever Expire takes a lost attempt back. Calls about a running
	// job carry the lease they were given, and a call with an older one
	// changes nothing (ErrStaleLease).
	Lease int64
	// LeaseUntil is when the current lease runs out unless renewed; zero
	// when the job is not running.
	LeaseUntil time.Time
	// Submitted, Started and Ended are when the job was submitted, when
	// its current attempt was assigned to an executor, and when it ended;
	// zero until then.
	Submitted, Started, Ended time.Time
	// Result is the verdict given to Finish, opaque to the store.
	Result json.RawMessage
	// ExitCode is the exit code given to Finish.
	ExitCode int
	// Reason says why the job was cancelled or failed.
	Reason string
	// StdoutLen and StderrLen are how many bytes of each stream are
	// stored.
	StdoutLen, StderrLen int64
}

// Stream names one of a job's two output streams.
type Stream int

// The output streams.
const (
	Stdout Stream = 1
	Stderr Stream = 2
)

// String returns "stdout" or "stderr".
func (s Stream) String() string {
	switch s {
	case Stdout:
		return "stdout"
	case Stderr:
		return "stderr"
	}
	return "stream(?)"
}

// valid reports whether s is Stdout or Stderr.
func (s Stream) valid() bool { return s == Stdout || s == Stderr }

// Filter selects jobs for List.
type Filter struct {
	// Owner keeps only this owner's jobs; "" keeps everyone's.
	Owner string
	// States keeps only jobs in one of these states; empty keeps all.
	States []State
	// Langs keeps only jobs in one of these languages; empty keeps all.
	Langs []string
	// Master and Executor keep only jobs last claimed by this master,
	// and last assigned to this executor; "" keeps all.
	Master, Executor string
	// Before keeps only jobs whose ID is below it, for paging: pass the
	// last ID of the previous page. 0 starts from the newest.
	Before int64
	// Limit is the most jobs returned: 0 means DefaultListLimit, and
	// more than MaxListLimit means MaxListLimit.
	Limit int
}

// List limits.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)
