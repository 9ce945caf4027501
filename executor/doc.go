// Package executor is the executor side of a resh cluster: what
// `reshd -join MASTER[:PORT]` runs (cluster/spec.md §2, §3, §5, §6).
//
// An executor listens nowhere. It dials its master, a connection session
// with TLS above it (the executor presents its host key and offers the
// ALPN protocol cluster.LinkALPN; the master admits it only if its key is
// in the master's RESH_HOME/executors), runs yamux on it and opens one
// stream, the link's control stream, on which it joins: its name, its
// limits (concurrent tasks, CPU), the languages it can compile and run,
// its version. From then on it reports its load on that stream, and the
// master opens one stream per session it offers. The executor enforces its
// limits itself: it refuses an offer when it is full, above its CPU limit
// or leaving, and otherwise runs the session nested on that stream exactly
// as a standalone reshd runs a client's (package server, Server.ServeMux).
//
// The master also runs durable jobs here (cluster/spec.md §8), each on a
// stream of its own that starts with JobRun, JobResume or JobDrop. A
// jobhost.Host, made once per Run from the sessions' configuration
// (languages, ceiling, -unsafe-no-sandbox, name), holds them: it runs each
// job, keeps its output until the master acknowledges it and its end until
// the master releases it. It outlives links: a lost link does not stop a
// held job, and the next Join lists the jobs held, for the master to
// resume from the offsets it stored. Running held jobs count as tasks
// (admission, Load); at shutdown they are killed after the Leave.
//
// The link rides out drops and damage as any connection session does.
// When it is lost for good (down for longer than Config.Timeout, or the
// master restarted and no longer knows it) the nested sessions end as when
// their clients go, and the executor joins again with a new link, after
// 1 s, doubling up to 30 s, for ever. When Run's context ends, the
// executor refuses new work, hangs up its sessions so that their clients
// get their commands' exit, tells the master it leaves, and closes the
// link.
//
// Files: config.go (Config and its defaults), run.go (the join–serve–
// rejoin loop), join.go (dialling and joining), link.go (one joined link),
// offer.go (offers, limits, sessions), jobs.go (job streams), load.go (load reports), cpu.go (CPU
// use from /proc/stat), languages.go (toolchains found), diagnose.go (why a
// join failed, in the admin's terms).
package executor
