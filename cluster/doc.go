// Package cluster is the master's side of reshd's cluster (spec.md beside
// this file): the registry of executors, the placement of each session on
// the executor with the most room, the FIFO queue of sessions that no
// executor takes yet, the master's end of each executor's link, and the
// relay of a client's session to the executor that runs it; and the
// master's end of durable jobs on executors (spec.md §8: RunJob, placed as
// a submitted program is, ResumeJob, DropJob, each a JobConn; OnJoin and
// OnLost tell the scheduler of executors coming and going).
//
// # Design notes
//
// A standalone reshd is a Master with one in-process executor: every
// session goes through Place, the same queue and the same ordering as
// through a master with remote executors. What differs is only how a placed
// session runs: an in-process placement is run by package server on the
// client's own multiplexed session, with no relay; a remote one is relayed
// by Placement.Relay over the executor's link. Relaying even in-process
// sessions (over a pipe to an executor in the same process) would have
// made "one code path" more literal, but at the price of a second yamux
// layer and a copy of every byte for every standalone session, which is
// what most users run; the placement, limits and queue, where the bugs
// would hide, are shared.
//
// Package executor is the other end of the link (reshd -join); package
// server accepts both clients and links on the master's port and calls
// Place and ServeLink.
package cluster
