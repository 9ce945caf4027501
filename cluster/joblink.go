package cluster

import "resh/proto"

// Link messages of durable jobs (spec.md §8): the master runs a stored job
// on an executor over a stream of the link, and the executor holds the
// job (its output, its end) until the master has stored it, across links.
const (
	TypeJobRun     proto.Type = 48 // JobRun: master → executor, first on a job stream; source and stdin follow
	TypeJobResume  proto.Type = 49 // JobResume: master → executor, first on a stream that re-attaches a held job
	TypeJobOutput  proto.Type = 50 // JobOutput: executor → master, output at an offset
	TypeJobEnd     proto.Type = 51 // JobEnd: executor → master, the job ended (after all its output)
	TypeJobAck     proto.Type = 52 // JobAck: master → executor, output stored up to these lengths
	TypeJobRelease proto.Type = 53 // JobRelease: master → executor, the end is stored: forget the job
	TypeJobCancel  proto.Type = 54 // JobCancel: master → executor, kill the job (its JobEnd follows)
	TypeJobDrop    proto.Type = 55 // JobDrop: master → executor, first on a stream: kill and forget a held job
)

// Output streams in JobOutput.
const (
	JobStdout = 1
	JobStderr = 2
)

// MaxJobChunk bounds JobOutput.Data.
const MaxJobChunk = 32 << 10

// JobRun asks an executor to run a stored job under Lease. Size bytes of
// source, then StdinSize bytes of stdin, follow on the stream, raw.
type JobRun struct {
	ID        int64           `json:"id"`
	Lease     int64           `json:"lease"`
	Lang      string          `json:"lang"`
	Name      string          `json:"name,omitempty"`
	Args      []string        `json:"args,omitempty"`
	Limits    proto.JobLimits `json:"limits,omitzero"`
	Size      int64           `json:"size"`
	StdinSize int64           `json:"stdin_size"`
	// NoStdin: the job has no stdin at all (EOF at once); StdinSize is 0.
	NoStdin bool `json:"no_stdin,omitempty"`
}

// JobResume re-attaches a job the executor holds, under the same Lease:
// the executor sends its output from these offsets, then its end.
type JobResume struct {
	ID     int64 `json:"id"`
	Lease  int64 `json:"lease"`
	Stdout int64 `json:"stdout"`
	Stderr int64 `json:"stderr"`
}

// JobOutput is Data written by the job at Offset of Stream (JobStdout,
// JobStderr). Chunks of one stream come in order, without gaps, at most
// MaxJobChunk bytes each.
type JobOutput struct {
	Stream int    `json:"stream"`
	Offset int64  `json:"offset"`
	Data   []byte `json:"data"`
}

// JobEnd says how the job ended; it comes after the last JobOutput.
type JobEnd struct {
	Verdict proto.Verdict `json:"verdict"`
	Exit    proto.Exit    `json:"exit"`
}

// JobAck tells the executor that the master stored the output up to these
// lengths: it may drop those bytes.
type JobAck struct {
	Stdout int64 `json:"stdout"`
	Stderr int64 `json:"stderr"`
}

// JobRelease tells the executor that the job's end is stored: it forgets
// the job, and both sides close the stream.
type JobRelease struct{}

// JobCancel asks the executor to kill the job; its JobEnd (verdict
// CANCELLED) follows as for any end.
type JobCancel struct {
	Reason string `json:"reason,omitempty"`
}

// JobDrop asks the executor to kill and forget a job it holds whose lease
// is no longer the store's: nothing of it will be stored.
type JobDrop struct {
	ID    int64 `json:"id"`
	Lease int64 `json:"lease"`
}

// HeldJob is a job an executor holds, listed in Join so that a master
// (restarted, or another) can re-attach it.
type HeldJob struct {
	ID    int64 `json:"id"`
	Lease int64 `json:"lease"`
	Ended bool  `json:"ended,omitempty"`
}
