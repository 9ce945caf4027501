package cluster

import (
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"resh/proto"
)

// Config tunes a Master. Zero fields take their default.
type Config struct {
	// QueueTimeout is how long a session may wait in the queue for an
	// executor before it fails. Default 3 minutes.
	QueueTimeout time.Duration
	// ExecutorTimeout is how long an executor's link may stay without a
	// transport before the executor is lost and its sessions end. Default
	// 30 s.
	ExecutorTimeout time.Duration
	// OfferTimeout bounds the wait for an executor's answer to an Offer;
	// no answer counts as a refusal. Default 10 s.
	OfferTimeout time.Duration
	// Name is the master's host name, sent in Welcome. Default: none.
	Name string
	// Logger receives one line per executor event. Default: discard.
	Logger *slog.Logger

	// InProcessJobs runs a durable job on the in-process executor (a
	// standalone reshd's, AddInProcess): RunJob calls it when it places a
	// job there. Nil: that executor is never given jobs.
	InProcessJobs func(run JobRun, source, stdin []byte) (JobConn, error)
	// InProcessResume re-attaches a job the in-process executor holds,
	// from these offsets (ResumeJob, DropJob); cluster.ErrUnknownJob when
	// it does not hold it under that lease.
	InProcessResume func(id, lease, stdout, stderr int64) (JobConn, error)
	// OnJoin is called once an executor joined (after Welcome) with the
	// jobs its Join lists (nil for none), on the goroutine serving its
	// link, before its Load reports are read: it may call ResumeJob and
	// DropJob, and should not block for long.
	OnJoin func(executor string, held []HeldJob)
	// OnLost is called once an executor is lost for good (its link ended:
	// lost, left; not when a new Join replaced it, nor when the Master is
	// closed), spec.md §6.
	OnLost func(executor string)
}

func (c Config) withDefaults() Config {
	if c.QueueTimeout <= 0 {
		c.QueueTimeout = 3 * time.Minute
	}
	if c.ExecutorTimeout <= 0 {
		c.ExecutorTimeout = 30 * time.Second
	}
	if c.OfferTimeout <= 0 {
		c.OfferTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// ErrClosed is returned by Place once the Master is closed.
var ErrClosed = errors.New("reshd: the server is shutting down")

// Master keeps the executors and places sessions on them.
type Master struct {
	cfg  Config
	log  *slog.Logger
	wake chan struct{} // the dispatcher's: an executor may have room
	room chan struct{} // Room's: likewise

	mu      sync.Mutex
	execs   map[string]*executor
	queue   []*waiter
	closed  bool
	nextID  uint64
	stopped chan struct{} // closed by Close
	done    chan struct{} // closed when the dispatcher returned
	links   sync.WaitGroup
}

// executor is what the master knows of one executor.
type executor struct {
	name      string
	addr      string
	key       string // fingerprint, "" for in-process or -insecure
	link      *link  // nil for the in-process executor
	maxTasks  int    // 0: no limit
	maxCPU    float64
	languages []string
	software  string
	since     time.Time

	placed   int     // sessions placed here that have not ended
	reported int     // tasks in its last Load
	cpu      float64 // in its last Load
	full     bool    // it refused as full, until its next Load
	hot      bool    // it refused as above its CPU limit, until its next Load
	leaving  bool
	starting bool // a local executor started, not joined yet: never offered anything
}

// has reports whether the executor advertised the language lang.
func (e *executor) has(lang string) bool {
	for _, l := range e.languages {
		if l == lang {
			return true
		}
	}
	return false
}

// tasks is the executor's running sessions as far as the master can tell.
func (e *executor) tasks() int { return max(e.placed, e.reported) }

// free is how many more sessions it may take (a large number without a
// limit).
func (e *executor) free() int {
	if e.maxTasks == 0 {
		return 1 << 30
	}
	return e.maxTasks - e.tasks()
}

// state is its state for the executors table.
func (e *executor) state() string {
	switch {
	case e.starting:
		return proto.StateStarting
	case e.link != nil && !e.link.attached():
		return proto.StateLost
	case e.free() <= 0 || e.full || e.hot || (e.maxCPU > 0 && e.maxCPU < 100 && e.cpu > e.maxCPU):
		return proto.StateFull
	}
	return proto.StateUp
}

// available reports whether it may be offered a session now.
func (e *executor) available() bool {
	return !e.leaving && e.state() == proto.StateUp
}

// NewMaster returns a Master with no executor; its dispatcher runs until
// Close.
func NewMaster(cfg Config) *Master {
	c := cfg.withDefaults()
	m := &Master{
		cfg:     c,
		log:     c.Logger,
		wake:    make(chan struct{}, 1),
		room:    make(chan struct{}, 1),
		execs:   map[string]*executor{},
		stopped: make(chan struct{}),
		done:    make(chan struct{}),
	}
	go m.dispatch()
	return m
}

// AddInProcess adds the executor that runs sessions in this process (a
// standalone reshd's): named name, no task or CPU limit.
func (m *Master) AddInProcess(name string, languages []string, software string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.execs[name] = &executor{name: name, addr: "in-process", maxCPU: 100, languages: languages, software: software, since: time.Now()}
	m.kick()
}

// Starting lists an executor that this master started and that has not
// joined yet (reshd -local): the executors table shows it as starting
// until its Join replaces it.
func (m *Master) Starting(name, addr string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.execs[name]; ok && !e.starting {
		return
	}
	m.execs[name] = &executor{name: name, addr: addr, starting: true, maxCPU: 100, since: time.Now()}
}

// kick wakes the dispatcher and Room's reader: an executor may have room.
// Called with or without mu.
func (m *Master) kick() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
	select {
	case m.room <- struct{}{}:
	default:
	}
}

// Executors describes every executor the master knows, sorted by name.
func (m *Master) Executors() []proto.ExecutorInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]proto.ExecutorInfo, 0, len(m.execs))
	for _, e := range m.execs {
		out = append(out, proto.ExecutorInfo{
			Name: e.name, Addr: e.addr, State: e.state(), Tasks: e.tasks(), MaxTasks: e.maxTasks,
			CPU: e.cpu, MaxCPU: e.maxCPU, Languages: e.languages, Version: e.software, Since: e.since,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Close stops placing: every queued session fails with ErrClosed, and
// every executor's link is closed (its relayed sessions end). It waits for
// the links' goroutines.
func (m *Master) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		<-m.done
		m.links.Wait()
		return
	}
	m.closed = true
	close(m.stopped)
	q := m.queue
	m.queue = nil
	var links []*link
	for _, e := range m.execs {
		if e.link != nil {
			links = append(links, e.link)
		}
	}
	m.mu.Unlock()
	for _, w := range q {
		w.finish(nil, ErrClosed)
	}
	for _, l := range links {
		l.close()
	}
	<-m.done
	m.links.Wait()
}
