package proto

// Durable jobs (spec.md §8): a submitted program is kept by the master as a
// job with an id, which clients submit, attach to, list, look at and
// cancel, each in a session of its own whose Hello carries a Query.

// Queries of durable jobs, in Hello.Query (spec.md §8).
const (
	// QuerySubmit stores Hello.Job as a job and answers Submitted.
	QuerySubmit = "submit"
	// QueryRun is QuerySubmit, then QueryAttach from the start, in one
	// session.
	QueryRun = "run"
	// QueryAttach streams a job's output from Hello.JobRequest's offsets,
	// live until its end, then Verdict and Exit.
	QueryAttach = "attach"
	// QueryJobs lists jobs (Hello.JobRequest's State and All): Jobs.
	QueryJobs = "jobs"
	// QueryJob answers Jobs with the one job Hello.JobRequest.ID.
	QueryJob = "job"
	// QueryCancel cancels the job Hello.JobRequest.ID: Jobs with it after.
	QueryCancel = "cancel"
)

// Message types of durable jobs.
const (
	TypeSubmitted Type = 25 // Submitted: the job is stored (its id)
	TypeJobState  Type = 26 // JobState: an attached job is queued, or runs on an executor
	TypeJobs      Type = 27 // Jobs: the answer to QueryJobs, QueryJob and QueryCancel
)

// Verdicts of durable jobs that did not run to their end, and their exit
// codes (spec.md §8).
const (
	VerdictCancelled    = "CANCELLED"
	VerdictExecutorLost = "EXECUTOR_LOST"

	ExitCancelled    = 119
	ExitExecutorLost = 120
)

// MaxJobStdin bounds the stdin stored with a job, in bytes.
const MaxJobStdin = 16 << 20

// JobRequest says which job (or jobs) a query is about.
type JobRequest struct {
	// ID is the job of QueryAttach, QueryJob and QueryCancel.
	ID int64 `json:"id,omitempty"`
	// Stdout and Stderr are the offsets QueryAttach starts from.
	Stdout int64 `json:"stdout,omitempty"`
	Stderr int64 `json:"stderr,omitempty"`
	// State, when set, lists only jobs in that state (QueryJobs).
	State string `json:"state,omitempty"`
	// All lists ended jobs too (QueryJobs); without it only queued and
	// running ones.
	All bool `json:"all,omitempty"`
	// Limit bounds how many jobs QueryJobs returns, newest first; 0 is
	// 100, at most 1000.
	Limit int `json:"limit,omitempty"`
}

// Submitted answers QuerySubmit and starts QueryRun's answer: the job is
// stored, durable, under ID.
type Submitted struct {
	ID int64 `json:"id"`
}

// JobState tells an attached client where its job is: "queued" or
// "running" (on Executor, the Attempt-th time). Sent at once on attach
// and at each change, until Verdict.
type JobState struct {
	State    string `json:"state"`
	Executor string `json:"executor,omitempty"`
	Attempt  int    `json:"attempt,omitempty"`
}

// JobInfo is one job as QueryJobs, QueryJob and QueryCancel show it.
type JobInfo struct {
	ID         int64    `json:"id"`
	Owner      string   `json:"owner"` // the submitter's key fingerprint
	State      string   `json:"state"` // queued, running, finished, cancelled, failed
	Lang       string   `json:"lang"`
	Name       string   `json:"name,omitempty"`
	Args       []string `json:"args,omitempty"`
	Executor   string   `json:"executor,omitempty"`
	Attempts   int      `json:"attempts,omitempty"`
	Submitted  string   `json:"submitted"`         // RFC 3339
	Started    string   `json:"started,omitempty"` // RFC 3339
	Ended      string   `json:"ended,omitempty"`   // RFC 3339
	DurationMS int64    `json:"duration_ms,omitempty"`
	Verdict    string   `json:"verdict,omitempty"`
	Exit       *Exit    `json:"exit,omitempty"`
	Reason     string   `json:"reason,omitempty"` // why failed or cancelled
	StdoutLen  int64    `json:"stdout_len"`
	StderrLen  int64    `json:"stderr_len"`
}

// Jobs answers QueryJobs (newest first), QueryJob and QueryCancel (one).
type Jobs struct {
	Jobs []JobInfo `json:"jobs"`
}
