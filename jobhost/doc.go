// Package jobhost holds the durable jobs an executor runs for its master
// (cluster/spec.md §8): it runs each job (package job), keeps its output
// from offset 0 until the master acknowledges having stored it, and its
// end until the master releases it, whatever happens to the link the job
// came on. A Host outlives links: package executor serves the link's job
// streams (JobRun, JobResume, JobDrop) from one, and lists its held jobs
// in each Join; a standalone reshd's master reaches its in-process
// executor's jobs through Held.Conn.
//
// Files: host.go (Host: run, resume, drop, list, close), held.go (one held
// job: its output, its end, Follow, Ack, Cancel, Release), conn.go (the
// in-process cluster.JobConn), langs.go (which languages run here), pool.go
// (the sandbox pool of a Host).
package jobhost
