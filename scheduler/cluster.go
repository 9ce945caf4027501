package scheduler

import (
	"context"
	"errors"
	"fmt"

	"resh/cluster"
)

// MasterCluster is the Cluster of a *cluster.Master. Its RunJob's errors
// are ErrNoRoom (try again on Room) but for a *cluster.LanguageError (no
// executor has the job's language: the job fails); its ResumeJob's
// cluster.ErrUnknownJob is ErrUnknownJob.
func MasterCluster(m *cluster.Master) Cluster { return masterCluster{m} }

type masterCluster struct{ m *cluster.Master }

func (c masterCluster) RunJob(ctx context.Context, run cluster.JobRun, source, stdin []byte) (Conn, error) {
	jc, err := c.m.RunJob(ctx, run, source, stdin)
	var le *cluster.LanguageError
	switch {
	case err == nil:
		return jc, nil
	case errors.As(err, &le):
		return nil, err
	case errors.Is(err, cluster.ErrNoRoom):
		return nil, fmt.Errorf("%w (%w)", ErrNoRoom, err)
	}
	return nil, fmt.Errorf("%w: %w", ErrNoRoom, err)
}

func (c masterCluster) ResumeJob(executor string, r cluster.JobResume) (Conn, error) {
	jc, err := c.m.ResumeJob(executor, r)
	var re *cluster.RefusedError
	switch {
	case err == nil:
		return jc, nil
	case errors.Is(err, cluster.ErrUnknownJob), errors.As(err, &re) && re.Reason == cluster.RefuseUnknown:
		return nil, fmt.Errorf("%w (%w)", ErrUnknownJob, err)
	}
	return nil, err
}

func (c masterCluster) Room() <-chan struct{}                { return c.m.Room() }
func (c masterCluster) Free() []string                       { return c.m.Free() }
func (c masterCluster) Languages() ([]string, bool)          { return c.m.Languages() }
func (c masterCluster) DropJob(executor string, id, l int64) { c.m.DropJob(executor, id, l) }
func (c masterCluster) Attached(executor string) bool        { return c.m.Attached(executor) }
