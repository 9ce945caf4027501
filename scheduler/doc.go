// Package scheduler runs a master's durable jobs (proto/spec.md §8,
// cluster/spec.md §8): the jobs clients submit are kept in a store.Store,
// and a Scheduler claims them when executors have room, runs them on the
// executors of a cluster (RunJob), stores their output as it comes (in
// batches, acknowledged to the executor once stored) and their end (once:
// Finish under the job's lease), and serves the clients' queries: Submit,
// Attach, List, Get and Cancel.
//
// # Leases
//
// A job is claimed with a lease of 3 × Config.ExecutorTimeout, renewed
// every ExecutorTimeout/3 while its executor is attached. An executor lost
// for good (OnLost) has its jobs expired at once: back to the queue, their
// output discarded, while retries remain. An executor that joins again
// (OnJoin) lists the jobs it holds: those still running under the same
// lease in the store are re-attached from the stored output lengths
// (ResumeJob), the others dropped (DropJob). For ExecutorTimeout after its
// start a Scheduler expires nothing but the jobs of executors it saw lost,
// so that the executors of a restarted master can join it again.
//
// # Owners
//
// Every query names its owner (the client key's fingerprint); another
// owner's job is answered as one that does not exist (ErrNoJob). The
// owner "" (AnyOwner) is the master's own keys': every job.
package scheduler
