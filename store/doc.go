// Package store keeps reshd's jobs durably: every submitted program, its
// state, its output and its verdict. One interface, Store, with two
// backends behind Open: SQLite (modernc.org/sqlite, pure Go), embedded,
// the default; and PostgreSQL (pgx), which several masters may share.
// The package knows nothing of resh's wire protocol: limits and verdicts
// are opaque JSON to it. spec.md beside this file is the full model.
//
// # States
//
// A job is queued when submitted. Claim makes it running for one master
// under a lease; from running it ends finished (Finish), failed (Fail, or
// Expire once its retries are spent) or cancelled (Cancel), or goes back
// to queued (Expire, while retries remain). A queued job can also be
// failed or cancelled. Finished, failed and cancelled are final: nothing
// changes such a job again, and Purge removes it after the retention
// time.
//
// # Leases
//
// Lease is a fencing token: it increases at every Claim and whenever
// Expire takes a lost attempt back. Whoever acts on a running job
// (Assign, Renew, AppendOutput, Finish, Fail) passes the lease it was
// given; with any other, the call changes nothing and returns
// ErrStaleLease. So an executor (or master) that comes back late, after
// its job was given to someone else, cannot write output or a verdict
// into the new attempt. LeaseUntil is when the lease runs out unless
// renewed; Expire takes back the running jobs whose lease ran out. Since
// executors keep running while their master is down, a master that
// restarts should re-attach the running jobs it holds (List them, Renew
// with their lease as their executors come back) before it calls Expire,
// waiting at least as long as executors take to reconnect.
//
// # Durability
//
// A method that changes a job returns once the change is committed. On
// SQLite the database is in WAL mode with synchronous=FULL: a commit is
// on disk (the WAL is fsynced) when it returns, so neither a crash of
// the process nor a power loss loses an acknowledged change. One
// goroutine writes: the operations queued while it commits go into the
// next transaction together, each in a savepoint of its own (group
// commit), so one fsync acknowledges many submissions and throughput
// grows with concurrency. On PostgreSQL each operation is a transaction
// (Submit and Claim a single statement), durable per the server's
// settings (synchronous_commit); row locks (SELECT ... FOR UPDATE SKIP
// LOCKED) keep two masters from claiming or expiring the same job.
//
// # Notifications
//
// Watch(id) gives a channel that receives a value after job id changed
// (id 0: after any job changed; QueuedJobs: after a job became queued,
// submitted or back in the queue), so that a caller streaming live output
// or waiting for queued work reads again instead of polling. A value
// means "something changed since you last looked"; values coalesce and
// spurious ones are possible. Changes made through the same Store value
// are announced after their commit. On PostgreSQL a trigger also
// announces every change with pg_notify on channel resh_jobs (the job's
// id, and "queued" when the change left it queued), delivered
// at commit, and each Store LISTENs there: a master learns of the other
// masters' changes too. SQLite has no such channel: two processes on one
// SQLite file do not see each other's notices.
//
// # River
//
// We evaluated riverqueue/river (v0.51, drivers riverpgxv5 and
// riversqlite) and do not use it. River runs a job as a Work function in
// the process that fetched it, completes it when Work returns, and
// rescues a job still running after RescueStuckJobsAfter by running it
// again ("can result in repeat or duplicate execution", its
// documentation says), with no fencing token and no lease renewal; our
// jobs run on remote executors that keep running while their master is
// down and must be re-attached, not re-run, with results accepted only
// under the current lease. River has no place for output streamed by
// offset, so its tables would sit beside ours rather than replace them,
// and its SQLite driver is "in early testing". We keep its shape instead:
// one interface, one backend per database, one conformance suite run
// against both, numbered migrations, and state, attempt and lease on
// every job row.
package store
