package executor

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"resh/auth"
	"resh/jobhost"
	"resh/lang"
	"resh/sandbox"
	"resh/server"
)

// sessionServer runs the sessions an executor accepts: *server.Server
// (made by server.New), or a test's fake.
type sessionServer interface {
	// ServeMux runs one session whose streams come from mux (a relayed
	// session's share of the link), and returns when it ended, mux
	// closed.
	ServeMux(mux server.Mux, remote string)
	// Shutdown hangs up every session and waits, until ctx is done, for
	// them to report their commands' exit.
	Shutdown(ctx context.Context) error
}

// hooks replace parts of an executor in tests; zero fields take the real
// thing.
type hooks struct {
	sessions     sessionServer   // default: server.New(Config.Server)
	cpu          func() float64  // default: the /proc/stat sampler
	minBackoff   time.Duration   // first wait before rejoining; default 1s
	maxBackoff   time.Duration   // longest wait; default 30s
	loadInterval time.Duration   // least time between CPU-only load reports; default 1s
	languages    func() []string // default: Languages
	grace        time.Duration   // shutdownGrace
}

// Backoff between joins, and the least time between two load reports
// sent for the CPU alone (cluster/spec.md §3, §6).
const (
	minBackoff   = time.Second
	maxBackoff   = 30 * time.Second
	loadInterval = time.Second
)

// shutdownGrace bounds how long, when Run's context ends, the sessions
// have to report their commands' exit after the hangup (which is followed
// by SIGKILL after the server's KillGrace, 3 s by default).
const shutdownGrace = 5 * time.Second

// Run joins the master and runs the sessions it offers until ctx is done.
// After a lost link (or a failed join) it joins again, after 1 s doubling
// up to 30 s, for ever; each loss and each join is logged. It returns nil
// once ctx is done, after ending its sessions as server.Shutdown does and
// telling the master it leaves; or at once an error that retrying cannot
// mend: a bad configuration, an unreadable host key, or a master whose key
// is not the one known_hosts pins (changed, or unknown with KnownOnly).
func Run(ctx context.Context, cfg Config) error {
	return run(ctx, cfg, hooks{})
}

// executor is one Run: its sessions and its limits, across links.
type executor struct {
	cfg      Config
	h        hooks
	log      *slog.Logger
	identity ed25519.PrivateKey // nil with Insecure
	home     string
	srv      sessionServer
	cpu      func() float64
	langs    []string
	jobs     *jobhost.Host // the durable jobs it holds, across links

	mu      sync.Mutex
	running int  // sessions accepted and not ended
	leaving bool // Run's context is done: refuse every offer

	changed  chan struct{}  // a token when running changed, for the load reports
	sessions sync.WaitGroup // one per offer stream being handled or served
	stopped  sync.Once      // shutdown's work
}

func run(ctx context.Context, cfg Config, h hooks) error {
	c, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	h.minBackoff = orDefault(h.minBackoff, minBackoff)
	h.maxBackoff = orDefault(h.maxBackoff, maxBackoff)
	h.loadInterval = orDefault(h.loadInterval, loadInterval)
	h.grace = orDefault(h.grace, shutdownGrace)
	if h.languages == nil {
		var set *lang.Set
		if c.Server != nil {
			set = c.Server.Languages
		}
		h.languages = func() []string { return Languages(set) }
	}
	e := &executor{cfg: c, h: h, log: c.Logger, changed: make(chan struct{}, 1), langs: h.languages()}
	if !c.Insecure {
		if err := e.loadIdentity(); err != nil {
			return err
		}
	}
	scfg := server.Config{}
	if c.Server != nil {
		scfg = *c.Server
	}
	if scfg.Logger == nil {
		scfg.Logger = c.Logger
	}
	jobs, pool := newJobHost(c, scfg)
	e.jobs = jobs
	if scfg.JobPool == nil {
		scfg.JobPool = pool // one pool for the sessions' programs and the held jobs
	}
	defer func() {
		if pool != nil {
			pool.Close()
		}
	}()
	defer jobs.Close() // after the Leave: the held jobs are killed
	e.srv = h.sessions
	if e.srv == nil {
		srv, err := server.New(&scfg)
		if err != nil {
			return fmt.Errorf("executor: %w", err)
		}
		e.srv = srv
	}
	stopCPU := make(chan struct{})
	var sampler sync.WaitGroup
	e.cpu = h.cpu
	if e.cpu == nil {
		var m cpuMeter
		e.cpu = m.get
		sampler.Add(1)
		go func() {
			defer sampler.Done()
			if err := m.run(stopCPU, c.CPUWindow, readProcStat); err != nil {
				e.log.Debug("reshd: cannot measure the CPU use: reporting 0", "err", err)
			}
		}()
	}
	defer func() {
		close(stopCPU)
		sampler.Wait()
	}()

	err = e.loop(ctx)
	e.shutdown()
	return err
}

// newJobHost makes the Host of the durable jobs the master runs here
// (cluster/spec.md §8), configured as the sessions' programs are (scfg),
// and the sandbox pool it made (nil without a sandbox, or when scfg gave
// one), to close after it.
func newJobHost(c Config, scfg server.Config) (*jobhost.Host, *sandbox.Pool) {
	// A pool given with the sessions' configuration is its giver's to
	// close; one made here is returned to be closed.
	pool, own := scfg.JobPool, (*sandbox.Pool)(nil)
	if pool == nil && !scfg.UnsafeNoSandbox {
		pool = jobhost.NewPool(scfg.JobCeiling)
		own = pool
	}
	name := scfg.ExecutorName
	if name == "" {
		name = c.Name
	}
	return jobhost.New(jobhost.Config{
		Languages: scfg.Languages,
		Ceiling:   scfg.JobCeiling,
		Unsafe:    scfg.UnsafeNoSandbox,
		Executor:  name,
		Pool:      pool,
		Logger:    c.Logger,
	}), own
}

// orDefault is v, or def when v is not positive.
func orDefault(v, def time.Duration) time.Duration {
	if v <= 0 {
		return def
	}
	return v
}

// loadIdentity reads (or creates) the executor's host key.
func (e *executor) loadIdentity() error {
	home, err := auth.HomeDir(e.cfg.Home)
	if err != nil {
		return err
	}
	path := filepath.Join(home, auth.HostKeyFile)
	key, created, err := auth.LoadOrCreateIdentity(path)
	if err != nil {
		return err
	}
	if created {
		e.log.Info("reshd: created the executor's host key", "path", path, "fingerprint", auth.Fingerprint(auth.PublicKey(key)))
	}
	e.home, e.identity = home, key
	return nil
}

// loop joins, serves the link, and joins again, until ctx is done (nil)
// or a join fails in a way that retrying cannot mend.
func (e *executor) loop(ctx context.Context) error {
	master := e.cfg.Master
	wait := e.h.minBackoff
	rejoin := false
	for {
		l, err := e.join(ctx)
		if ctx.Err() != nil {
			if err == nil {
				// Told to stop as the master took it in: leave, so
				// that the master forgets it now rather than waiting
				// for it as for a link gone down. (Stopped before the
				// master's Welcome was read, join closed the link: the
				// master sees it end.)
				e.leave(l)
			}
			return nil
		}
		if err != nil {
			msg, fatal := e.diagnose(err)
			if fatal {
				e.log.Error("reshd: "+msg, "master", master, "err", err)
				return auth.HostKeyError(err)
			}
			e.log.Warn("reshd: "+msg+"; trying again in "+wait.String(), "master", master, "err", err)
		} else {
			if rejoin {
				e.log.Info("reshd: joined the master again", "master", master, "name", e.cfg.Name, "master_host", l.master, "tasks", l.joinedTasks)
			} else {
				e.log.Info("reshd: joined the master", "master", master, "name", e.cfg.Name, "master_host", l.master,
					"max_tasks", e.cfg.MaxTasks, "max_cpu", e.cfg.MaxCPU, "languages", e.langs)
			}
			rejoin = true
			wait = e.h.minBackoff
			err = e.serve(ctx, l)
			if ctx.Err() != nil {
				return nil
			}
			e.log.Warn("reshd: lost the link to the master; its sessions end, its held jobs go on; joining again in "+wait.String(), "master", master, "held_jobs", len(e.jobs.Held()), "err", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = min(2*wait, e.h.maxBackoff)
	}
}

// shutdown refuses every offer from now on, hangs up the sessions (their
// clients get their commands' exit) and waits for them.
func (e *executor) shutdown() {
	e.stopped.Do(e.stop)
}

func (e *executor) stop() {
	e.mu.Lock()
	e.leaving = true
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), e.h.grace)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		e.log.Warn("reshd: sessions cut at shutdown", "err", err)
	}
	e.sessions.Wait()
}
