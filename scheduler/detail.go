package scheduler

import (
	"context"

	"resh/proto"
	"resh/store"
)

// Job returns owner's job id whole, as stored (AnyOwner: any job): its
// source, stdin, limits and result besides what Get shows; ErrNoJob when
// it does not exist or is another's.
func (s *Scheduler) Job(ctx context.Context, owner string, id int64) (store.Job, error) {
	return s.get(ctx, owner, id)
}

// VerdictOf is the verdict and exit of the ended job j, as Attach ends
// with them: those its executor sent for a finished job, CANCELLED or
// EXECUTOR_LOST for one that did not run to its end, SANDBOX_ERROR for
// one the master failed otherwise. ok is false while j has not ended.
func VerdictOf(j store.Job) (v proto.Verdict, e proto.Exit, ok bool) {
	if !j.State.Ended() {
		return proto.Verdict{}, proto.Exit{}, false
	}
	v, e = verdictOf(j)
	return v, e, true
}
