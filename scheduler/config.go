package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"resh/cluster"
	"resh/store"
)

// Cluster is what a Scheduler needs of the master's executors: the
// methods of *cluster.Master it calls (see cluster/spec.md §8), with the
// JobConns they return seen as Conns. MasterCluster adapts a
// *cluster.Master.
type Cluster interface {
	// RunJob places the job on an executor with its language and room and
	// returns its Conn once an executor accepted it; ErrNoRoom when none
	// has room now.
	RunJob(ctx context.Context, run cluster.JobRun, source, stdin []byte) (Conn, error)
	// Room receives a value whenever an executor may have room.
	Room() <-chan struct{}
	// Free lists the languages of the executors that have room now.
	Free() []string
	// Languages lists the languages of every known executor, and whether
	// any executor is known.
	Languages() (langs []string, anyExecutor bool)
	// ResumeJob re-attaches a job the executor holds, from the offsets of
	// r; ErrUnknownJob when it does not hold it under r.Lease.
	ResumeJob(executor string, r cluster.JobResume) (Conn, error)
	// DropJob tells the executor to kill and forget a job (best effort).
	DropJob(executor string, id, lease int64)
	// Attached reports whether the executor is joined and its link
	// attached now.
	Attached(executor string) bool
}

// Conn is the master's end of one job on one executor (cluster.JobConn).
type Conn interface {
	// Next returns the next output chunk or the end (then io.EOF); any
	// other error means the stream is lost, the executor may still hold
	// the job.
	Next() (out *cluster.JobOutput, end *cluster.JobEnd, err error)
	// Ack says the store has these lengths.
	Ack(stdout, stderr int64) error
	// Cancel asks the executor to kill the job; its end follows.
	Cancel(reason string) error
	// Release says the end is stored: the executor forgets the job.
	Release() error
	// Close abandons this end; the executor keeps holding the job.
	Close() error
	// Executor names the executor.
	Executor() string
}

// Config tunes a Scheduler. Store and Cluster are required; other zero
// fields take their default.
type Config struct {
	// Store keeps the jobs.
	Store store.Store
	// Cluster runs them.
	Cluster Cluster
	// Name is this master's name in the jobs it claims (store.Job.Master):
	// the same across its restarts, and no other master's that shares the
	// store (a master that restarted takes back at once the jobs it had
	// placed on an executor that joins again without them). Default:
	// "master".
	Name string
	// ExecutorTimeout is the cluster's (reshd -executor-timeout): leases
	// last 3 times it and are renewed every third of it, and for as long
	// as it after the start nothing is expired. Default 30 s.
	ExecutorTimeout time.Duration
	// Retries is how many times a job whose executor was lost runs again
	// (reshd -job-retries N: N, or NoRetries for 0). Default (0):
	// DefaultRetries; negative: none.
	Retries int
	// Retention is how long an ended job is kept (reshd -job-retention).
	// Default 7 days.
	Retention time.Duration
	// PurgeEvery is how often ended jobs older than Retention are
	// removed (also at the start). Default 1 hour.
	PurgeEvery time.Duration
	// BatchDelay and BatchBytes bound how long, and how many bytes of a
	// job's output, wait before they are stored and acknowledged (and so
	// reach attached clients). Default 25 ms (a line printed alone reaches
	// its client that much later; each batch is a store commit, which the
	// store's group commit shares among jobs) and 64 KiB.
	BatchDelay time.Duration
	BatchBytes int
	// Now is the clock of leases (nil: time.Now).
	Now func() time.Time
	// Logger gets one line per job event. Default: discard.
	Logger *slog.Logger
	// OnEnd, if set, is called with the verdict (proto.VerdictOK, ...)
	// of each job this Scheduler ends, once per job, right after its end
	// is stored (see Scheduler.Ended, which counts them). It is called
	// from the Scheduler's goroutines and those of its queries (Cancel):
	// it must not block.
	OnEnd func(verdict string)
}

// Defaults.
const (
	DefaultExecutorTimeout = 30 * time.Second
	DefaultRetries         = 1
	NoRetries              = -1 // Config.Retries for none
	DefaultRetention       = 7 * 24 * time.Hour
	DefaultPurgeEvery      = time.Hour
	DefaultBatchDelay      = 25 * time.Millisecond
	DefaultBatchBytes      = 64 << 10
)

// withDefaults checks c and fills in its defaults.
func (c Config) withDefaults() (Config, error) {
	if c.Store == nil || c.Cluster == nil {
		return c, errors.New("scheduler: Config needs a Store and a Cluster")
	}
	if c.Name == "" {
		c.Name = "master"
	}
	if c.ExecutorTimeout <= 0 {
		c.ExecutorTimeout = DefaultExecutorTimeout
	}
	if c.Retries == 0 {
		c.Retries = DefaultRetries
	}
	if c.Retention <= 0 {
		c.Retention = DefaultRetention
	}
	if c.PurgeEvery <= 0 {
		c.PurgeEvery = DefaultPurgeEvery
	}
	if c.BatchDelay <= 0 {
		c.BatchDelay = DefaultBatchDelay
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = DefaultBatchBytes
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Store = newEndCounter(c.Store, c.OnEnd) // metrics.go
	return c, nil
}

// leaseFor is how long a claim or a renewal holds a job.
func (c Config) leaseFor() time.Duration { return 3 * c.ExecutorTimeout }

// maxRetries is Retries as store.Job.MaxRetries says it.
func (c Config) maxRetries() int {
	if c.Retries < 0 {
		return store.NoRetries
	}
	return c.Retries
}
