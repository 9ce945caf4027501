package cluster

import "resh/proto"

// LinkALPN is the TLS application protocol an executor offers when it
// dials a master: it tells the master that the key must be an executor's
// (RESH_HOME/executors), not a client's (spec.md §2).
const LinkALPN = "resh-executor/1"

// LinkVersion is the version of the link protocol in spec.md.
const LinkVersion = 1

// Link message types, in the codec of proto (length, type, JSON body).
// They share no stream with the session protocol's, so the numbers only
// need to differ among themselves; they are kept apart from proto's for
// clarity in captures.
const (
	TypeJoin    proto.Type = 40 // Join: executor → master, first on the link's control stream
	TypeWelcome proto.Type = 41 // Welcome: master → executor, the executor is admitted
	TypeLoad    proto.Type = 42 // Load: executor → master, its running tasks and CPU
	TypeOffer   proto.Type = 43 // Offer: master → executor, first on a session stream
	TypeAccept  proto.Type = 44 // Accept: executor → master, it takes the offered session
	TypeRefuse  proto.Type = 45 // Refuse: executor → master, it does not
	TypeLeave   proto.Type = 46 // Leave: executor → master, it stops taking work and goes
	TypeAttach  proto.Type = 47 // Attach: first on a further stream of an accepted session, either way
)

// Join is the executor's first message: who it is and what it can take.
type Join struct {
	Version   int      `json:"version"` // LinkVersion
	Name      string   `json:"name"`
	MaxTasks  int      `json:"max_tasks"` // ≥ 1
	MaxCPU    float64  `json:"max_cpu"`   // percent of all cores, 1..100
	Languages []string `json:"languages,omitempty"`
	Software  string   `json:"software,omitempty"` // reshd's version
	Tasks     int      `json:"tasks,omitempty"`    // sessions it still runs (after a master restart)
	CPU       float64  `json:"cpu,omitempty"`
	// Jobs are the durable jobs it holds (running, or ended and not yet
	// released), for the master to re-attach (spec.md §8).
	Jobs []HeldJob `json:"jobs,omitempty"`
}

// Welcome admits an executor.
type Welcome struct {
	Master string `json:"master,omitempty"` // the master's host name, for logs
}

// Load reports an executor's running sessions and CPU use. It is sent when
// the number of tasks changes, and at most once a second when the CPU use
// moved by a point or more.
type Load struct {
	Tasks int     `json:"tasks"`
	CPU   float64 `json:"cpu"` // percent of all cores over the last sample window
}

// Offer proposes a session to an executor. The fields are for its limits
// and logs; the session itself follows on the same stream once accepted.
type Offer struct {
	ID      uint64 `json:"id"`
	Client  string `json:"client,omitempty"` // the client's address
	Command string `json:"command,omitempty"`
	TTY     bool   `json:"tty,omitempty"`
}

// Accept takes an offered session.
type Accept struct{}

// Refusal reasons in Refuse.Reason.
const (
	RefuseFull    = "full"    // at max-tasks
	RefuseCPU     = "cpu"     // above max-cpu
	RefuseLeaving = "leaving" // shutting down
)

// Refuse declines an offered session; the master places it elsewhere.
type Refuse struct {
	Reason  string `json:"reason"`
	Message string `json:"message,omitempty"`
}

// Leave says the executor stops taking work on purpose (it is shutting
// down): the master marks it gone at once instead of waiting for the link
// to time out.
type Leave struct {
	Reason string `json:"reason,omitempty"`
}

// Attach starts every stream of an accepted session but its anchor (the
// stream its Offer came on), in either direction: it names the session by
// its Offer's ID. What follows is that stream's content in the session
// protocol (proto/spec.md), starting with its Open or TransferOpen.
type Attach struct {
	Session uint64 `json:"session"`
}
