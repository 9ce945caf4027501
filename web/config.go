package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"resh/proto"
	"resh/scheduler"
	"resh/store"
)

// Jobs is what the dashboard asks of the master's durable jobs
// (*scheduler.Scheduler has it). owner is as in the scheduler:
// scheduler.AnyOwner sees every job.
type Jobs interface {
	Submit(ctx context.Context, owner string, job proto.Job, source, stdin []byte) (store.Job, error)
	Get(ctx context.Context, owner string, id int64) (proto.JobInfo, error)
	List(ctx context.Context, owner string, req proto.JobRequest) ([]proto.JobInfo, error)
	Cancel(ctx context.Context, owner string, id int64, reason string) (proto.JobInfo, error)
	Attach(ctx context.Context, owner string, id, stdout, stderr int64, sink scheduler.Sink) error
	// Job returns the whole stored job (source, stdin, limits, result).
	Job(ctx context.Context, owner string, id int64) (store.Job, error)
}

// Locals starts and stops the master's local executors (reshd -local).
type Locals interface {
	// List returns the local executors, by number.
	List() []Local
	// SetCount starts or stops local executors until n run (0..Max),
	// the highest numbered stopping first.
	SetCount(n int) error
	// Start starts one more and returns its name.
	Start() (string, error)
	// Stop stops the one named name (ErrNoLocal when there is none).
	Stop(name string) error
	// Max is the most that may run.
	Max() int
}

// ErrNoLocal is Locals.Stop's error for a name that is no local
// executor's.
var ErrNoLocal = errors.New("no such local executor")

// Local is one local executor.
type Local struct {
	Name     string `json:"name"`
	Running  bool   `json:"running"`
	PID      int    `json:"pid,omitempty"`
	Restarts int    `json:"restarts"`
}

// Info is the master as GET /api/v1/info shows it (spec.md).
type Info struct {
	Name    string    `json:"name"`
	Version string    `json:"version"`
	Started time.Time `json:"started"`
	Listen  string    `json:"listen"` // reshd's own address
	HTTP    string    `json:"http"`   // the dashboard's, to browse (a wildcard one by the host's name)
	HTTPS   bool      `json:"https"`
	Store   string    `json:"store"` // "sqlite" or "postgres"
	Secure  bool      `json:"secure"`
}

// Config is what New serves. Jobs, Executors and Info are required; the
// other fields may be left zero.
type Config struct {
	Jobs Jobs
	// Executors lists the connected executors, sorted by name.
	Executors func() []proto.ExecutorInfo
	// Languages lists the languages some connected executor has.
	Languages func() []string
	// WaitingSessions is how many resh sessions wait for an executor.
	WaitingSessions func() int
	// Locals manages local executors; nil: the routes answer 503.
	Locals Locals
	// Owner owns the jobs submitted through the dashboard: the master's
	// host key's fingerprint.
	Owner string
	// Info describes the master (Started fixes the uptime).
	Info func() Info
	// Stop stops the master (POST /api/v1/stop); nil: 503.
	Stop func()
	// Token, when not empty, is required of every request (spec.md).
	Token string
	// Hosts are the Host header values accepted besides the listen
	// address (host:port, as a browser sends them).
	Hosts []string
	// Metrics serves /metrics; nil: 404.
	Metrics http.Handler
	// Logger gets the dashboard's log (nil: discarded).
	Logger *slog.Logger
}
