// Package reshdcmd is the reshd program: its command line, its keys in
// RESH_HOME, its log and pid files, starting in the background, and the
// processes it runs itself as (the guardian, the re-execution with no
// signal blocked). cmd/reshd only calls Main.
//
// It is a package of its own rather than part of server because all of it
// is about being a program on a machine (flags, files, /proc, exit codes),
// while server is the session library that tests and other programs embed.
package reshdcmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"resh/auth"
	"resh/cluster"
	"resh/executor"
	"resh/internal/cli"
	"resh/internal/version"
	"resh/lang"
	"resh/metrics"
	"resh/sandbox"
	"resh/server"
)

// Command is reshd's command line, for -h and bad usage.
var Command = cli.Command{
	Name:     "reshd",
	Synopsis: "reshd [-listen ADDR] [-master [-local N]] [-join MASTER[:PORT] [-name NAME]] [-max-tasks N] [-max-cpu PCT] [-unsafe-no-sandbox] [-job-ceiling LIMITS] [-store URL] [-job-retries N] [-job-retention DURATION] [-http ADDR] [-detach-timeout DURATION] [-insecure] [-log FILE] [-pidfile FILE] [-replace] [-detach]",
	Summary: "Serves resh sessions, running each command as the user running reshd, and relays\n" +
		"lcat/ltee transfers to the client. Keys are in RESH_HOME (default ~/.resh).\n" +
		"With -master it places sessions on executors instead (reshd -join MASTER), started\n" +
		"by hand or by -local N.",
}

// GuardianArg, as reshd's only argument, runs it as the guardian of
// another reshd (server.ServeGuard), which starts it: not for users.
const GuardianArg = "-internal-guardian"

// KillGrace is how long a hung-up command may live before SIGKILL, as
// server.Config.KillGrace's default.
const KillGrace = 3 * time.Second

// shutdownTimeout bounds the wait for sessions after SIGTERM: commands get
// SIGKILL 3s after SIGHUP, and the rest lets their Exit reach clients that
// are still connected (a detached client would hold the drain for long).
const shutdownTimeout = 5 * time.Second

// Options are reshd's parsed command line.
type Options struct {
	Listen        string        // address to listen on
	DetachTimeout time.Duration // how long a disconnected session waits
	Insecure      bool          // plain TCP, no TLS, loopback only
	LogFile       string        // append the log to this file instead of stderr
	PIDFile       string        // write the process id here once listening
	Replace       bool          // stop the reshd named by PIDFile first
	Detach        bool          // run in the background once listening

	Master          bool           // place sessions on executors
	Local           int            // executors to start on this machine (-master)
	QueueTimeout    time.Duration  // how long a session waits for an executor
	ExecutorTimeout time.Duration  // how long an executor's link may be down
	Join            string         // be an executor of this master (host:port)
	Name            string         // the executor's name (-join)
	MaxTasks        int            // the executor's (or local executors') task limit; 0: default
	MaxCPU          float64        // the executor's (or local executors') CPU limit, percent
	KnownOnly       bool           // -join: refuse a master not in known_hosts
	UnsafeNoSandbox bool           // run submitted programs without bubblewrap
	JobCeiling      sandbox.Limits // the most a submitted program may ask for
	JobCeilingArg   string         // -job-ceiling as given, for the local executors
	Store           string         // the job store's URL ("": SQLite in RESH_HOME)
	JobRetries      int            // runs of a job after a lost one
	JobRetention    time.Duration  // how long an ended job is kept
	HTTP            string         // serve the dashboard here ("": not at all)
}

// DefaultPort is reshd's port when an address names none.
const DefaultPort = "4200"

// Main is reshd's main with os.Args; it returns the exit status.
func Main(args []string) int {
	if len(args) == 2 && args[1] == GuardianArg {
		// It outlives reshd, whatever ends it.
		signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
		return server.ServeGuard(os.Stdin, os.Stderr, KillGrace)
	}
	if err := unblockSignals(); err != nil {
		_, _ = fmt.Fprintf(os.Stderr, "reshd: %v\n", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return Run(ctx, args[1:], os.Stdout, os.Stderr)
}

// Parse parses reshd's arguments. done is true when the program should
// exit at once with code (after -h, --version or bad usage, which Parse
// reported on stdout or stderr).
func Parse(args []string, stdout, stderr io.Writer) (o Options, code int, done bool) {
	fs := Command.FlagSet()
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:4200", "the address to listen on, `ADDR` as host:port (port 0 picks a free one)")
	fs.DurationVar(&o.DetachTimeout, "detach-timeout", 10*time.Minute, "how long a disconnected session waits for its client")
	fs.BoolVar(&o.Insecure, "insecure", false, "plain TCP, no TLS and no keys (loopback addresses only)")
	fs.StringVar(&o.LogFile, "log", "", "append the log to `FILE` instead of stderr")
	fs.StringVar(&o.PIDFile, "pidfile", "", "write reshd's process id to `FILE` once listening (removed at exit)")
	fs.BoolVar(&o.Replace, "replace", false, "first stop the reshd whose pid is in the -pidfile, and wait for it to exit")
	fs.BoolVar(&o.Detach, "detach", false, "run in the background once listening (needs -log); exit 0 then, or non-zero saying why it could not")
	fs.BoolVar(&o.Master, "master", false, "place sessions on executors (reshd -join, or -local) instead of running them")
	fs.IntVar(&o.Local, "local", 0, "with -master: start `N` executors on this machine, stopped with the master")
	fs.DurationVar(&o.QueueTimeout, "queue-timeout", 3*time.Minute, "how long a session may wait for a free executor")
	fs.DurationVar(&o.ExecutorTimeout, "executor-timeout", 30*time.Second, "how long an executor's link may stay down before it is lost and its sessions end")
	fs.StringVar(&o.Join, "join", "", "be an executor: join the master at `MASTER[:PORT]` and run the sessions it places here")
	fs.StringVar(&o.Name, "name", "", "with -join: the executor's `NAME` (default: the host name)")
	fs.IntVar(&o.MaxTasks, "max-tasks", 0, "with -join or -local: run at most `N` sessions at once (default: the number of CPUs)")
	fs.Float64Var(&o.MaxCPU, "max-cpu", 100, "with -join or -local: refuse sessions while the CPU use is above `PCT` percent of all cores")
	fs.BoolVar(&o.KnownOnly, "known-only", false, "with -join: refuse a master whose key is not in known_hosts")
	fs.BoolVar(&o.UnsafeNoSandbox, "unsafe-no-sandbox", false, "run submitted programs (reshjob) without the bubblewrap sandbox: only rlimits and a wall timer")
	ceiling := fs.String("job-ceiling", "", "the most a submitted program may ask for, `LIMITS` as time=10m,cpu=10m,mem=2G,procs=256,output=64M,fsize=256M (each left out: 4 times its default)")
	fs.StringVar(&o.Store, "store", "", "keep the durable jobs in `URL`: a SQLite file (PATH or sqlite:PATH) or postgres://... shared by several masters (default: SQLite in RESH_HOME/jobs.db)")
	fs.IntVar(&o.JobRetries, "job-retries", defaultJobRetries, "run a durable job again at most `N` times after its executor was lost (then it fails with EXECUTOR_LOST)")
	fs.DurationVar(&o.JobRetention, "job-retention", defaultJobRetention, "keep an ended durable job, with its output, for `DURATION`")
	fs.StringVar(&o.HTTP, "http", "", "serve the web dashboard and its HTTP API on `ADDR` (conventionally 127.0.0.1:"+DefaultHTTPPort+"): plain HTTP and no login on loopback, else HTTPS and the token of RESH_HOME/"+auth.HTTPTokenFile)
	if code, done := Command.Parse(fs, args, stdout, stderr); done {
		return o, code, true
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	o.JobCeilingArg = *ceiling
	o.JobCeiling, err = parseCeiling(*ceiling)
	switch {
	case err != nil:
	case fs.NArg() > 0:
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.DetachTimeout <= 0:
		err = fmt.Errorf("-detach-timeout must be positive, not %v", o.DetachTimeout)
	case o.Insecure && !loopback(o.Listen):
		err = fmt.Errorf("-insecure refuses to listen on %q: only a loopback address (127.0.0.1, ::1, localhost)", o.Listen)
	case o.Replace && o.PIDFile == "":
		err = errors.New("-replace needs -pidfile FILE (the reshd to stop)")
	case o.Detach && o.LogFile == "":
		err = errors.New("-detach needs -log FILE (the log has nowhere else to go)")
	case o.Master && o.Join != "":
		err = errors.New("-master and -join exclude each other: a reshd is a master or an executor")
	case o.Local != 0 && !o.Master:
		err = errors.New("-local needs -master")
	case o.Local < 0 || o.Local > 64:
		err = fmt.Errorf("-local must be 0 to 64, not %d", o.Local)
	case o.Join != "" && set["listen"]:
		err = errors.New("-join and -listen exclude each other: an executor listens nowhere, it dials its master")
	case o.Join == "" && (set["name"] || set["known-only"]):
		err = errors.New("-name and -known-only need -join")
	case o.Join == "" && o.Local == 0 && (set["max-tasks"] || set["max-cpu"]):
		err = errors.New("-max-tasks and -max-cpu need -join or -master -local N")
	case set["max-tasks"] && o.MaxTasks < 1:
		err = fmt.Errorf("-max-tasks must be at least 1, not %d", o.MaxTasks)
	case o.MaxCPU < 1 || o.MaxCPU > 100:
		err = fmt.Errorf("-max-cpu must be 1 to 100 (percent of all cores), not %v", o.MaxCPU)
	case o.QueueTimeout <= 0:
		err = fmt.Errorf("-queue-timeout must be positive, not %v", o.QueueTimeout)
	case o.ExecutorTimeout <= 0:
		err = fmt.Errorf("-executor-timeout must be positive, not %v", o.ExecutorTimeout)
	case o.Join != "" && (set["store"] || set["job-retries"] || set["job-retention"]):
		err = errors.New("-store, -job-retries and -job-retention are a master's: an executor keeps no jobs")
	case o.JobRetries < 0 || o.JobRetries > 100:
		err = fmt.Errorf("-job-retries must be 0 to 100, not %d", o.JobRetries)
	case o.JobRetention <= 0:
		err = fmt.Errorf("-job-retention must be positive, not %v", o.JobRetention)
	case o.Join != "" && set["http"]:
		err = errors.New("-http is a master's (or a standalone reshd's): an executor serves no dashboard")
	case set["http"]:
		o.HTTP, err = httpAddress(o.HTTP)
	case o.Join != "":
		o.Join, err = joinAddress(o.Join)
		if err == nil && o.Name != "" {
			err = executor.ValidName(o.Name)
		}
		if err == nil && o.Insecure && !loopback(o.Join) {
			err = fmt.Errorf("-insecure refuses to join %q: only a master on a loopback address (127.0.0.1, ::1, localhost)", o.Join)
		}
	}
	if err != nil {
		return o, Command.BadUsage(stderr, err), true
	}
	return o, 0, false
}

// Run is reshd with its arguments: it serves until ctx is done, then shuts
// down, and returns the exit status.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, code, done := Parse(args, stdout, stderr)
	if done {
		return code
	}
	// The dashboard's stop button ends reshd as SIGTERM does.
	ctx, stopReshd := context.WithCancel(ctx)
	defer stopReshd()
	ready := detachedChild()
	if o.Detach && ready == nil {
		return detach(o, stdout, stderr)
	}
	// fail reports an error that stops reshd: on stderr, in the log file,
	// and to the waiting parent when detached.
	fatal := []io.Writer{stderr}
	fail := func(format string, a ...any) int {
		for _, w := range fatal {
			_, _ = fmt.Fprintf(w, "reshd: "+format+"\n", a...)
		}
		if ready != nil {
			_, _ = fmt.Fprintf(ready, "reshd: "+format+"\n", a...)
			_ = ready.Close()
		}
		return 1
	}
	logOut := stderr
	if o.LogFile != "" {
		f, err := os.OpenFile(o.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fail("cannot open the log file: %v", err)
		}
		defer f.Close()
		logOut = f
		if ready == nil { // when detached, stderr is this file already
			fatal = append(fatal, f)
		}
	}
	log := slog.New(slog.NewTextHandler(logOut, nil))
	if o.Replace {
		if err := replace(o.PIDFile, log); err != nil {
			return fail("%v", err)
		}
	}
	server.RaiseFileLimit(log)
	cfg := &server.Config{DetachTimeout: o.DetachTimeout, Logger: log, KillGrace: KillGrace, UnsafeNoSandbox: o.UnsafeNoSandbox, ExecutorName: o.Name, JobCeiling: o.JobCeiling}
	langs, err := loadLanguages(log)
	if err != nil {
		return fail("%v", err)
	}
	cfg.Languages = langs
	if o.UnsafeNoSandbox {
		log.Warn("reshd: -unsafe-no-sandbox: submitted programs run WITHOUT a sandbox, as this user, with only rlimits and a wall timer: any program can read and write what this user can")
	}
	// The guardian hangs up the sessions if reshd is killed (-9).
	guard, err := server.StartGuard(log, selfExe(), GuardianArg)
	if err != nil {
		log.Warn("reshd: no guardian: sessions will outlive reshd if it is killed", "err", err)
	}
	defer func() { _ = guard.Close() }()
	cfg.Guard = guard
	if o.Join != "" {
		return runExecutor(ctx, o, cfg, log, fail, fatal, ready)
	}
	if !o.Insecure {
		tcfg, err := secure(log, o.Master)
		if err != nil {
			return fail("%v", err)
		}
		cfg.TLS = tcfg
	}
	host, _ := os.Hostname()
	mcfg := cluster.Config{QueueTimeout: o.QueueTimeout, ExecutorTimeout: o.ExecutorTimeout, Name: host, Logger: log}
	inProcess := host
	if inProcess == "" {
		inProcess = "localhost"
	}
	if cfg.ExecutorName == "" {
		cfg.ExecutorName = inProcess
	}
	jb, err := openJobs(ctx, o, cfg, log)
	if err != nil {
		return fail("%v", err)
	}
	defer jb.close()
	jb.hooks(&mcfg, inProcess)
	cfg.Master = cluster.NewMaster(mcfg)
	if o.Master {
		cfg.Executors = true
	} else {
		cfg.Master.AddInProcess(inProcess, executor.Languages(cfg.Languages), version.Short())
	}
	if err := jb.start(o, cfg.Master, inProcess, log); err != nil {
		cfg.Master.Close()
		return fail("%v", err)
	}
	cfg.Jobs = jb.sched
	if !o.Insecure {
		cfg.JobAdmins = jobAdmins(log)
	}
	srv, err := server.Listen(o.Listen, cfg)
	if err != nil {
		jb.stopScheduler()
		cfg.Master.Close()
		return fail("%v", listenError(o.Listen, err))
	}
	var local *locals
	if o.Master {
		if local, err = newLocals(o, srv.Addr().String(), cfg.Master, logOut, log); err != nil {
			_ = srv.Shutdown(context.Background())
			return fail("%v", err)
		}
		defer local.stop()
		// Before the dashboard serves: a count set through its API must
		// not be undone by this first one.
		if err := local.SetCount(o.Local); err != nil {
			_ = srv.Shutdown(context.Background())
			return fail("%v", err)
		}
		if o.Local > 0 {
			log.Info("reshd: local executors started", "count", o.Local, "master", local.addr)
		}
	}
	var dash *dashboard
	if o.HTTP != "" {
		parts := dashboardParts{jobs: jb.sched, master: cfg.Master, stop: stopReshd, listen: srv.Addr().String(), started: time.Now()}
		parts.metrics = metrics.Handler(metrics.New(metrics.Sources{
			Server: srv.Stats, Executors: cfg.Master.Executors, Jobs: jb.st.Count,
			Ended: jb.sched.Ended, Waiting: cfg.Master.Waiting, Version: version.Short(),
		}), log)
		if local != nil {
			parts.locals = local
		}
		outs := fatal
		if ready != nil {
			outs = append(slices.Clip(outs), ready)
		}
		if dash, err = startDashboard(o, parts, log, outs); err != nil {
			_ = srv.Shutdown(context.Background())
			return fail("%v", err)
		}
		defer dash.close()
	}
	if o.PIDFile != "" {
		if err := writePIDFile(o.PIDFile); err != nil {
			dash.close()
			_ = srv.Shutdown(context.Background())
			return fail("%v", err)
		}
		defer removePIDFile(o.PIDFile)
	}
	for _, w := range fatal {
		_, _ = fmt.Fprintf(w, "reshd: listening on %s\n", srv.Addr())
	}
	if ready != nil {
		_, _ = fmt.Fprintf(ready, "reshd: listening on %s\n", srv.Addr())
		_ = ready.Close()
	}
	if o.Insecure {
		who := "this user"
		if u, err := user.Current(); err == nil {
			who = u.Username
		}
		log.Warn("reshd: -insecure: no encryption and no authentication: anyone who can reach this address can run commands as "+who, "addr", srv.Addr().String())
	}
	stopLocals := func() {}
	if local != nil {
		stopLocals = local.stop
	}
	// The scheduler stops before the master closes: the jobs stay with
	// their executors, for this master's next start.
	return serve(ctx, srv, log, func() { dash.close(); jb.stopScheduler(); stopLocals() })
}

// loadLanguages reads the languages submitted programs may be in: the
// built-in ones with RESH_HOME/languages laid over them. A bad file stops
// reshd, saying where.
func loadLanguages(log *slog.Logger) (*lang.Set, error) {
	home, err := auth.Home()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(home, lang.FileName)
	set, err := lang.Load(path, nil)
	if err != nil {
		return nil, fmt.Errorf("the languages file: %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		log.Info("reshd: languages file read", "path", path, "languages", set.Names())
	}
	return set, nil
}

// joinAddress completes an executor's MASTER[:PORT] with the default port.
func joinAddress(a string) (string, error) {
	if _, _, err := net.SplitHostPort(a); err == nil {
		return a, nil
	}
	if strings.HasPrefix(a, "[") && strings.HasSuffix(a, "]") {
		a = a[1 : len(a)-1]
	}
	if a == "" {
		return "", errors.New("-join needs the master's address, MASTER[:PORT]")
	}
	return net.JoinHostPort(a, DefaultPort), nil
}

// serve serves until ctx is done or serving fails, then shuts srv down.
// first runs before the server shuts down: a master stops its local
// executors then, while their links are up, so that each hangs up its
// sessions (whose exit reaches their clients through the master), leaves
// and closes its link cleanly.
func serve(ctx context.Context, srv *server.Server, log *slog.Logger, first func()) int {
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	select {
	case err := <-served:
		log.Error("reshd: stopped serving", "err", err)
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return 1
	case <-ctx.Done():
	}
	log.Info("reshd: shutting down")
	first()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("reshd: sessions cut at shutdown", "err", err)
	}
	<-served
	return 0
}

// listenError says why reshd cannot listen on addr, naming the process
// that holds the port when it can tell.
func listenError(addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		if pid, name, ok := portHolder(addr); ok {
			return fmt.Errorf("address %s already in use by %s (pid %d): stop it or choose another -listen address", addr, name, pid)
		}
		return fmt.Errorf("address %s already in use: stop what listens there or choose another -listen address", addr)
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return fmt.Errorf("cannot listen on %s: %v", addr, op.Err)
	}
	return fmt.Errorf("cannot listen on %s: %v", addr, err)
}

// selfExe is this program's executable, as /proc/self/exe where there is
// one (it holds even once the file was replaced).
func selfExe() string {
	if _, err := os.Stat("/proc/self/exe"); err == nil {
		return "/proc/self/exe"
	}
	exe, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	return exe
}

// loopback reports whether the listen address addr is on a loopback
// interface only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
