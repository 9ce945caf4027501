package reshdcmd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/ssh"

	"resh/auth"
	"resh/cluster"
	"resh/jobhost"
	"resh/sandbox"
	"resh/scheduler"
	"resh/server"
	"resh/store"
)

// Defaults of the durable jobs' flags.
const (
	defaultJobRetries   = 1
	defaultJobRetention = 7 * 24 * time.Hour
)

// jobs is what a master (or a standalone reshd) keeps its durable jobs
// with: the store, the scheduler, and, standalone, the in-process
// executor's host.
type jobs struct {
	st    store.Store
	sched *scheduler.Scheduler
	host  *jobhost.Host // standalone only
	pool  *sandbox.Pool // the host's, nil without the sandbox
	stop  context.CancelFunc
	done  chan struct{}
}

// openJobs opens the store of o.Store (default: SQLite in RESH_HOME) and
// prepares the in-process executor's host of a standalone reshd (not
// o.Master). The master's hooks come from hooks.
func openJobs(ctx context.Context, o Options, cfg *server.Config, log *slog.Logger) (*jobs, error) {
	home, err := auth.Home()
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, o.Store, &store.Options{Dir: home, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("the job store: %w", err)
	}
	j := &jobs{st: st}
	if !o.Master {
		if !o.UnsafeNoSandbox {
			j.pool = jobhost.NewPool(o.JobCeiling)
			cfg.JobPool = j.pool // one pool for live programs and durable jobs
		}
		j.host = jobhost.New(jobhost.Config{
			Languages: cfg.Languages, Ceiling: o.JobCeiling, Unsafe: o.UnsafeNoSandbox,
			Executor: cfg.ExecutorName, Pool: j.pool, Logger: log,
		})
	}
	return j, nil
}

// hooks sets the master's hooks of durable jobs in mc: the scheduler's
// OnJoin and OnLost, and a standalone reshd's in-process executor named
// name.
func (j *jobs) hooks(mc *cluster.Config, name string) {
	mc.OnJoin = func(e string, held []cluster.HeldJob) {
		if j.sched != nil {
			j.sched.OnJoin(e, held)
		}
	}
	mc.OnLost = func(e string) {
		if j.sched != nil {
			j.sched.OnLost(e)
		}
	}
	if j.host != nil {
		mc.InProcessJobs, mc.InProcessResume = server.InProcessJobs(j.host, name)
	}
}

// start makes the scheduler on m and runs it until stopJobs.
func (j *jobs) start(o Options, m *cluster.Master, name string, log *slog.Logger) error {
	retries := o.JobRetries
	if retries == 0 {
		retries = scheduler.NoRetries
	}
	s, err := scheduler.New(scheduler.Config{
		Store: j.st, Cluster: scheduler.MasterCluster(m), Name: masterLabel(name, o.Listen, os.Getpid()),
		ExecutorTimeout: o.ExecutorTimeout, Retries: retries, Retention: o.JobRetention, Logger: log,
	})
	if err != nil {
		return err
	}
	j.sched = s
	ctx, cancel := context.WithCancel(context.Background())
	j.stop, j.done = cancel, make(chan struct{})
	go func() { defer close(j.done); _ = s.Run(ctx) }()
	return nil
}

// masterLabel is this master's name in the jobs it claims: its host and
// address, the same when it restarts on them, and no other's (two masters
// on one host listen on two addresses). A master on a port chosen at
// start (port 0) cannot come back on it: its pid makes its name its own.
func masterLabel(host, listen string, pid int) string {
	if _, port, err := net.SplitHostPort(listen); err != nil || port == "0" {
		return fmt.Sprintf("%s %s #%d", host, listen, pid)
	}
	return host + " " + listen
}

// stopScheduler stops the scheduler (its jobs stay with their
// executors), before the master closes.
func (j *jobs) stopScheduler() {
	if j.stop != nil {
		j.stop()
		<-j.done
	}
}

// close stops everything, after the server's shutdown: the scheduler, the
// in-process executor's jobs (killed: they run again after the restart,
// as lost ones), the store.
func (j *jobs) close() {
	j.stopScheduler()
	if j.host != nil {
		j.host.Close()
	}
	if j.pool != nil {
		j.pool.Close()
	}
	_ = j.st.Close()
}

// jobAdmins lists the fingerprints of the keys that see every job: the
// host key and the identity RESH_HOME/id_ed25519.pub, those that exist.
func jobAdmins(log *slog.Logger) []string {
	home, err := auth.Home()
	if err != nil {
		return nil
	}
	var fps []string
	if hk, err := auth.LoadIdentity(filepath.Join(home, auth.HostKeyFile)); err == nil {
		fps = append(fps, auth.Fingerprint(auth.PublicKey(hk)))
	}
	pubPath := filepath.Join(home, auth.IdentityFile+".pub")
	b, err := os.ReadFile(pubPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		log.Warn("reshd: cannot read the identity's public key: it does not see every job", "path", pubPath, "err", err)
	default:
		pub, _, _, _, err := ssh.ParseAuthorizedKey(b)
		if err != nil {
			log.Warn("reshd: the identity's public key is not valid: it does not see every job", "path", pubPath, "err", err)
			break
		}
		fps = append(fps, auth.Fingerprint(pub))
	}
	return fps
}
