package store

import "errors"

// Errors. Each operation wraps them with the job's id, so test them with
// errors.Is.
var (
	// ErrNotFound: no job has this id (or, for Cancel with an owner, none
	// of this owner's jobs has it).
	ErrNotFound = errors.New("store: no such job")
	// ErrStaleLease: the lease given is not the job's current one. The
	// caller (a master or an executor that lost the job to Expire and a
	// new claim) must stop acting on the job; nothing was changed.
	ErrStaleLease = errors.New("store: stale lease: the job was taken back and given to someone else")
	// ErrState: the job's state does not allow the operation, e.g.
	// appending output to a cancelled job or cancelling a finished one.
	// Nothing was changed.
	ErrState = errors.New("store: not allowed in the job's state")
	// ErrAlreadyDone: Finish was called again with the lease that already
	// finished the job. The job returned with it is the stored one, so a
	// caller that lost the first reply can carry on; nothing was changed.
	ErrAlreadyDone = errors.New("store: job already finished")
	// ErrGap: AppendOutput was given an offset beyond the stream's stored
	// length; the bytes in between were never sent. The caller must
	// resend from the stored length (see ReadOutput).
	ErrGap = errors.New("store: output offset beyond what is stored")
	// ErrNoJob: Claim found no queued job (of the languages asked for).
	ErrNoJob = errors.New("store: no queued job")
	// ErrInvalid: an argument is out of range (negative offset, unknown
	// stream or state, bad JSON, bad store URL).
	ErrInvalid = errors.New("store: invalid argument")
	// ErrSchemaNewer: the database was migrated by a newer version of
	// resh than this one; upgrade resh (never downgrade a store).
	ErrSchemaNewer = errors.New("store: the database's schema is newer than this resh knows: upgrade resh")
	// ErrClosed: the Store was closed.
	ErrClosed = errors.New("store: closed")
)
