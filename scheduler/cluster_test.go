package scheduler

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/cluster"
)

// MasterCluster turns cluster's errors into the scheduler's: no room (or
// a refusal) is ErrNoRoom, an unknown language stays a LanguageError (the
// job fails), an executor not holding a job is ErrUnknownJob.
func TestMasterClusterErrors(t *testing.T) {
	m := cluster.NewMaster(cluster.Config{
		InProcessResume: func(id, lease, stdout, stderr int64) (cluster.JobConn, error) { return nil, cluster.ErrUnknownJob },
	})
	defer m.Close()
	m.AddInProcess("here", []string{"sh"}, "test")
	c := MasterCluster(m)

	_, err := c.RunJob(context.Background(), cluster.JobRun{ID: 1, Lease: 1, Lang: "sh"}, nil, nil)
	require.ErrorIs(t, err, ErrNoRoom, "no InProcessJobs: the in-process executor refuses")
	_, err = c.RunJob(context.Background(), cluster.JobRun{ID: 1, Lease: 1, Lang: "cobol"}, nil, nil)
	var le *cluster.LanguageError
	require.ErrorAs(t, err, &le)
	assert.NotErrorIs(t, err, ErrNoRoom)

	_, err = c.ResumeJob("here", cluster.JobResume{ID: 1, Lease: 1})
	require.ErrorIs(t, err, ErrUnknownJob)
	_, err = c.ResumeJob("nowhere", cluster.JobResume{ID: 1, Lease: 1})
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrUnknownJob, "an executor not joined may come back")

	langs, any := c.Languages()
	assert.True(t, any)
	assert.Equal(t, []string{"sh"}, langs)
	assert.Empty(t, c.Free(), "no InProcessJobs: no room for jobs")
	assert.True(t, c.Attached("here"))
}
