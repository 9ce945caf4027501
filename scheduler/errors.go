package scheduler

import (
	"errors"
	"fmt"

	"resh/store"
)

// Errors of the scheduler's queries. Their text is what a client reads.
var (
	// ErrNoJob: no job has this id, or it is another owner's (or was
	// purged). Wrapped with the id: "reshd: no job 7".
	ErrNoJob = errors.New("reshd: no job")
	// ErrNoRoom: the cluster has no executor with room for the job now;
	// the Scheduler keeps the claimed job and tries again when Room says
	// so. A Cluster's RunJob returns it (wrapped or not).
	ErrNoRoom = errors.New("scheduler: no executor has room for the job now")
	// ErrUnknownJob: the executor does not hold the job under that lease
	// (a Cluster's ResumeJob): the attempt is lost.
	ErrUnknownJob = errors.New("scheduler: the executor does not hold that job under that lease")
	// ErrTooLarge: a job's stdin is above proto.MaxJobStdin.
	ErrTooLarge = errors.New("reshd: the job's stdin is too large")
	// ErrBadRequest: a query's request is not valid (an unknown state).
	ErrBadRequest = errors.New("reshd: bad job request")
	// ErrNoLanguage: Submit refused a language no connected executor has.
	// Wrapped with the language and those there are.
	ErrNoLanguage = errors.New("no executor has the language")
)

// noJob is ErrNoJob for id.
func noJob(id int64) error { return fmt.Errorf("%w %d", ErrNoJob, id) }

// EndedError is the answer to cancelling a job that has ended.
type EndedError struct {
	ID    int64
	State store.State
}

// Error says which job and how it ended.
func (e *EndedError) Error() string {
	return fmt.Sprintf("reshd: job %d has ended (%s)", e.ID, e.State)
}
