package server

import (
	"resh/cluster"
	"resh/jobhost"
)

// InProcessJobs returns the hooks of cluster.Config (InProcessJobs,
// InProcessResume) that run a standalone reshd's durable jobs on host,
// as its in-process executor named executor.
func InProcessJobs(host *jobhost.Host, executor string) (
	run func(run cluster.JobRun, source, stdin []byte) (cluster.JobConn, error),
	resume func(id, lease, stdout, stderr int64) (cluster.JobConn, error),
) {
	run = func(r cluster.JobRun, source, stdin []byte) (cluster.JobConn, error) {
		j, err := host.Run(r, source, stdin)
		if err != nil {
			return nil, err
		}
		return j.Conn(executor, 0, 0), nil
	}
	resume = func(id, lease, stdout, stderr int64) (cluster.JobConn, error) {
		j, err := host.Resume(id, lease)
		if err != nil {
			return nil, err
		}
		return j.Conn(executor, stdout, stderr), nil
	}
	return run, resume
}
