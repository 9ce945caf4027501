package tests

import (
	"bufio"
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"resh/client"
	"resh/proto"
	"resh/scheduler"
	"resh/store"
	"resh/store/pgtest"
)

// The durable jobs' speed (issue 13): submissions acknowledged per second
// on SQLite and PostgreSQL, against the store alone; attach latency to
// the first byte; store size per job. Each benchmark runs only with
// -bench, and each op is a unit of work (a submission, an attach, a line,
// a job), so that -benchtime=Nx bounds it.

// Concurrency of the submitters: reshjob processes as a user's script
// runs them (xargs -P8), and in-process clients, to see what a master
// can take.
const (
	reshjobSubmitters = 8
	clientSubmitters  = 32
)

// benchPG are the settings of the benchmarks' PostgreSQL: every commit
// synced, as SQLite's synchronous=FULL (pgtest's default does not sync).
var benchPG = []string{"fsync=on", "synchronous_commit=on", "full_page_writes=on"}

// trivialPy is the program submitted by BenchmarkJobSubmit: the master
// has no executor, so it is only stored.
const trivialPy = "print(1)\n"

// benchOwner stands for a client key's fingerprint in the store baseline.
const benchOwner = "SHA256:4bC2oM0uMx1fV6RrQ2e9Xg0mP3nFh0yq7tVw1sJk2aE"

// clientOptions are the client options reaching d as reshjob's do (see
// reshjobArgs): -known-only with TLS, else -insecure; no ssh
// configuration.
func (d *daemon) clientOptions(tb testing.TB) *client.Options {
	tb.Helper()
	host, port, err := net.SplitHostPort(d.addr)
	require.NoError(tb, err)
	p, err := strconv.Atoi(port)
	require.NoError(tb, err)
	return &client.Options{Host: host, Port: p, Insecure: d.insecure, KnownOnly: !d.insecure, ConfigFile: "none", Quiet: true}
}

// openQuery opens a session to d as reshjob does (client.Open) and sends
// hello, then stdin on the stdin stream, half-closed.
func openQuery(ctx context.Context, o client.Options, hello proto.Hello, stdin []byte) (*client.Session, error) {
	s, err := client.Open(ctx, &o, client.Env{Stdout: io.Discard, Stderr: io.Discard}, "bench")
	if err != nil {
		return nil, err
	}
	hello.Version = proto.Version
	if err := s.Send(proto.TypeHello, hello); err != nil {
		s.Close()
		return nil, s.Lost(err)
	}
	if stdin != nil {
		if _, err := s.Stdin.Write(stdin); err != nil {
			s.Close()
			return nil, s.Lost(err)
		}
	}
	_ = s.Stdin.Close()
	return s, nil
}

// readAnswer reads the next message on s's control stream into v, which
// must be of type want; an Error is an error with its message.
func readAnswer(s *client.Session, want proto.Type, v any) error {
	t, body, err := proto.ReadMessage(s.Control)
	if err != nil {
		return s.Lost(err)
	}
	switch t {
	case want:
		return proto.Decode(body, v)
	case proto.TypeError:
		var e proto.Error
		_ = proto.Decode(body, &e)
		return errors.New(e.Message)
	}
	return fmt.Errorf("got message type %d, want %d", t, want)
}

// submitQuery submits src as a python job named name through a session of
// its own (the query reshjob submit sends) and returns its id.
func submitQuery(ctx context.Context, o client.Options, name string, src []byte, args ...string) (int64, error) {
	job := &proto.Job{Lang: "python", Name: name, Size: int64(len(src)), Args: args}
	s, err := openQuery(ctx, o, proto.Hello{Query: proto.QuerySubmit, Job: job}, src)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	var sub proto.Submitted
	if err := readAnswer(s, proto.TypeSubmitted, &sub); err != nil {
		return 0, err
	}
	return sub.ID, nil
}

// apiSubmitter returns a function that submits trivialPy through the
// dashboard's API at url (as reshd printed it: with ?token= off
// loopback), over keep-alive connections, n at once.
func apiSubmitter(tb testing.TB, url string, n int) func() error {
	base, token, _ := strings.Cut(url, "?token=")
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: n,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, // the dashboard's self-signed certificate
	}}
	tb.Cleanup(hc.CloseIdleConnections)
	body := fmt.Sprintf(`{"lang":"python","name":"one.py","source":%q}`, trivialPy)
	base = strings.Replace(base, "0.0.0.0", "127.0.0.1", 1)
	if h, err := os.Hostname(); err == nil {
		base = strings.Replace(base, "://"+h+":", "://127.0.0.1:", 1)
	}
	return func() error {
		req, err := http.NewRequest("POST", base+"api/v1/jobs", strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("POST /api/v1/jobs: %s: %s", resp.Status, out)
		}
		return nil
	}
}

// cancelQuery cancels job id (the query reshjob cancel sends).
func cancelQuery(ctx context.Context, o client.Options, id int64) error {
	s, err := openQuery(ctx, o, proto.Hello{Query: proto.QueryCancel, JobRequest: &proto.JobRequest{ID: id}}, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	var jobs proto.Jobs
	return readAnswer(s, proto.TypeJobs, &jobs)
}

// finish reads s's control stream to Exit and returns the Verdict sent
// before it.
func finish(s *client.Session) (proto.Verdict, error) {
	var v proto.Verdict
	for {
		t, body, err := proto.ReadMessage(s.Control)
		if err != nil {
			return v, s.Lost(err)
		}
		switch t {
		case proto.TypeVerdict:
			if err := proto.Decode(body, &v); err != nil {
				return v, err
			}
		case proto.TypeExit:
			return v, nil
		case proto.TypeError:
			var e proto.Error
			_ = proto.Decode(body, &e)
			return v, errors.New(e.Message)
		}
	}
}

// inParallel runs do b.N times from n goroutines and returns how long it
// took; the first error stops it.
func inParallel(b *testing.B, n int, do func() error) time.Duration {
	b.Helper()
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) && !failed.Load() {
				if err := do(); err != nil {
					if !failed.Swap(true) {
						b.Error(err)
					}
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// cpuTicks is the CPU time (user + system) process pid used so far, from
// /proc/PID/stat.
func cpuTicks(tb testing.TB, pid int) time.Duration {
	tb.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(tb, err)
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	require.NoError(tb, errors.Join(err1, err2))
	const hz = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / hz
}

// selfCPU is the CPU time (user + system) this process used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// perJobMS is d per job of b.N, in milliseconds.
func perJobMS(b *testing.B, d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond) / float64(b.N)
}

// quantileMS is the q-quantile of ds, in milliseconds (ds is sorted).
func quantileMS(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return float64(ds[int(q*float64(len(ds)-1)+0.5)]) / float64(time.Millisecond)
}

// needTools skips b without the programs jobs run with.
func needTools(b *testing.B, tools ...string) {
	b.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("%s is not installed", tool)
		}
	}
}

// BenchmarkJobSubmit measures submissions acknowledged per second by a
// master with no executor (reshd -master without -local: the jobs stay
// queued, so only submitting is measured), its store SQLite or
// PostgreSQL (synced commits both), submitted
//
//   - reshjob-8: by `reshjob HOST submit one.py` processes, 8 at a time;
//   - client-32: by 32 goroutines of this process, each submission a
//     session of its own through client.Open, the query reshjob sends;
//
// and, as their baselines, store-8 and store-32: store.Submit of the same
// job on a fresh store of the same backend from as many goroutines. Each
// reports jobs/s, its ratio to the store's (vs-store), and the CPU per
// job of reshd and of the submitters (this process, or the reshjob
// processes).
func BenchmarkJobSubmit(b *testing.B) {
	ctx := context.Background()
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			var masterURL, baseURL string
			if backend == "sqlite" {
				masterURL, baseURL = filepath.Join(b.TempDir(), "jobs.db"), filepath.Join(b.TempDir(), "base.db")
			} else {
				masterURL, baseURL = pgtest.Start(b, benchPG...), pgtest.Start(b, benchPG...)
			}
			m := startReshd(b, "-master", "-store", masterURL)
			base, err := store.Open(ctx, baseURL, nil)
			require.NoError(b, err)
			b.Cleanup(func() { _ = base.Close() })
			rates := map[int]float64{}
			for _, n := range []int{reshjobSubmitters, clientSubmitters} {
				b.Run(fmt.Sprintf("store-%d", n), func(b *testing.B) {
					job := store.Job{Owner: benchOwner, Lang: "python", Name: "one.py", Source: []byte(trivialPy), Stdin: []byte{}}
					cpu := selfCPU()
					b.ResetTimer()
					took := inParallel(b, n, func() error {
						_, err := base.Submit(ctx, job)
						return err
					})
					b.StopTimer()
					rates[n] = float64(b.N) / took.Seconds()
					b.ReportMetric(rates[n], "jobs/s")
					b.ReportMetric(perJobMS(b, selfCPU()-cpu), "cpu-ms/job")
				})
			}
			o := *m.clientOptions(b)
			b.Run(fmt.Sprintf("client-%d", clientSubmitters), func(b *testing.B) {
				reshd, self := cpuTicks(b, m.cmd.Process.Pid), selfCPU()
				b.ResetTimer()
				took := inParallel(b, clientSubmitters, func() error {
					_, err := submitQuery(ctx, o, "one.py", []byte(trivialPy))
					return err
				})
				b.StopTimer()
				rate := float64(b.N) / took.Seconds()
				b.ReportMetric(rate, "jobs/s")
				b.ReportMetric(rate/rates[clientSubmitters], "vs-store")
				b.ReportMetric(perJobMS(b, cpuTicks(b, m.cmd.Process.Pid)-reshd), "reshd-cpu-ms/job")
				b.ReportMetric(perJobMS(b, selfCPU()-self), "client-cpu-ms/job")
			})
			// Through the dashboard's API (web/spec.md): one keep-alive
			// HTTP connection per submitter, plain on loopback and HTTPS
			// with the token off it (a master of its own on a fresh store
			// of the same backend).
			for _, scheme := range []string{"http", "https"} {
				b.Run(fmt.Sprintf("%s-%d", scheme, clientSubmitters), func(b *testing.B) {
					storeURL := filepath.Join(b.TempDir(), "api.db")
					if backend == "postgres" {
						storeURL = pgtest.Start(b, benchPG...)
					}
					listen := "127.0.0.1:0"
					if scheme == "https" {
						listen = "0.0.0.0:0"
					}
					am := startReshd(b, "-master", "-store", storeURL, "-http", listen)
					post := apiSubmitter(b, am.dashboardURL(b), clientSubmitters)
					reshd, self := cpuTicks(b, am.cmd.Process.Pid), selfCPU()
					b.ResetTimer()
					took := inParallel(b, clientSubmitters, post)
					b.StopTimer()
					rate := float64(b.N) / took.Seconds()
					b.ReportMetric(rate, "jobs/s")
					b.ReportMetric(rate/rates[clientSubmitters], "vs-store")
					b.ReportMetric(perJobMS(b, cpuTicks(b, am.cmd.Process.Pid)-reshd), "reshd-cpu-ms/job")
					b.ReportMetric(perJobMS(b, selfCPU()-self), "client-cpu-ms/job")
				})
			}
			b.Run(fmt.Sprintf("reshjob-%d", reshjobSubmitters), func(b *testing.B) {
				path := writeProgram(b, "one.py", trivialPy)
				argv := reshjobArgs(b, m, "submit", path)
				reshd := cpuTicks(b, m.cmd.Process.Pid)
				var clientCPU atomic.Int64
				b.ResetTimer()
				took := inParallel(b, reshjobSubmitters, func() error {
					cmd := exec.Command(filepath.Join(bin, "reshjob"), argv...)
					out, err := cmd.CombinedOutput()
					if cmd.ProcessState != nil {
						clientCPU.Add(int64(cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()))
					}
					if err != nil {
						return fmt.Errorf("reshjob %q: %v: %s", argv, err, out)
					}
					if _, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err != nil {
						return fmt.Errorf("reshjob submit printed %q, not an id", out)
					}
					return nil
				})
				b.StopTimer()
				rate := float64(b.N) / took.Seconds()
				b.ReportMetric(rate, "jobs/s")
				b.ReportMetric(rate/rates[reshjobSubmitters], "vs-store")
				b.ReportMetric(perJobMS(b, cpuTicks(b, m.cmd.Process.Pid)-reshd), "reshd-cpu-ms/job")
				b.ReportMetric(perJobMS(b, time.Duration(clientCPU.Load())), "reshjob-cpu-ms/job")
			})
		})
	}
}

// BenchmarkJobAttachFirstByte measures, on a standalone reshd (its
// in-process executor, SQLite):
//
//   - attach: from starting an attach (client.Open, then the query
//     reshjob attach sends, from byte 0) to the first byte of stdout, on a
//     job that printed a line and runs on (JobState says running); open-ms
//     is the part spent opening the session (its baseline);
//   - live: from the job's print (time.time_ns(), a line every 10 ms) to
//     its arrival at a client already attached (the run query), per line;
//     live-sparse: the same with a line every 150 ms, each line alone in
//     the master's output batch (stored after scheduler.DefaultBatchDelay,
//     100 ms, from its first byte);
//   - reshjob-run: `reshjob HOST run hello.py a b` from its start to the
//     first byte of its stdout, and to its end; local-ms is python3
//     hello.py run here to its first byte (the baseline).
//
// Each reports the median and p95 in ms.
func BenchmarkJobAttachFirstByte(b *testing.B) {
	needTools(b, "bwrap", "python3")
	ctx := context.Background()
	d := startReshd(b)
	o := *d.clientOptions(b)

	b.Run("attach", func(b *testing.B) {
		const src = "import time\nprint('ready', flush=True)\ntime.sleep(120)\n"
		id, err := submitQuery(ctx, o, "ready.py", []byte(src))
		require.NoError(b, err)
		defer func() { require.NoError(b, cancelQuery(ctx, o, id)) }()
		attach := proto.Hello{Query: proto.QueryAttach, JobRequest: &proto.JobRequest{ID: id}}
		// Once: the job runs and printed its line (waits for the event).
		first := func() (opened, firstByte time.Duration, state proto.JobState, err error) {
			start := time.Now()
			s, err := openQuery(ctx, o, attach, nil)
			if err != nil {
				return 0, 0, state, err
			}
			defer s.Close()
			opened = time.Since(start)
			var one [1]byte
			if _, err := io.ReadFull(s.Stdout, one[:]); err != nil {
				return 0, 0, state, s.Lost(err)
			}
			firstByte = time.Since(start)
			err = readAnswer(s, proto.TypeJobState, &state)
			return opened, firstByte, state, err
		}
		_, _, _, err = first()
		require.NoError(b, err)
		opens, firsts := make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			opened, firstByte, state, err := first()
			require.NoError(b, err)
			require.Equal(b, "running", state.State)
			opens, firsts = append(opens, opened), append(firsts, firstByte)
		}
		b.StopTimer()
		b.ReportMetric(quantileMS(firsts, 0.5), "first-byte-ms")
		b.ReportMetric(quantileMS(firsts, 0.95), "first-byte-p95-ms")
		b.ReportMetric(quantileMS(opens, 0.5), "open-ms")
	})

	live := func(b *testing.B, every time.Duration) {
		const src = "import sys, time\nfor i in range(int(sys.argv[1])):\n    print(time.time_ns(), flush=True)\n    time.sleep(float(sys.argv[2]))\n"
		args := []string{strconv.Itoa(b.N), strconv.FormatFloat(every.Seconds(), 'f', -1, 64)}
		job := &proto.Job{Lang: "python", Name: "ticks.py", Size: int64(len(src)), Args: args}
		s, err := openQuery(ctx, o, proto.Hello{Query: proto.QueryRun, Job: job}, []byte(src))
		require.NoError(b, err)
		defer s.Close()
		var sub proto.Submitted
		require.NoError(b, readAnswer(s, proto.TypeSubmitted, &sub))
		ended := make(chan error, 1)
		go func() {
			v, err := finish(s)
			if err == nil && v.Verdict != "OK" {
				err = fmt.Errorf("verdict %+v", v)
			}
			ended <- err
		}()
		lags := make([]time.Duration, 0, b.N)
		r := bufio.NewReader(s.Stdout)
		b.ResetTimer()
		for range b.N {
			line, err := r.ReadString('\n')
			arrived := time.Now()
			require.NoError(b, err)
			ns, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
			require.NoError(b, err, "%q", line)
			lags = append(lags, arrived.Sub(time.Unix(0, ns)))
		}
		b.StopTimer()
		require.NoError(b, <-ended)
		b.ReportMetric(quantileMS(lags, 0.5), "lag-ms")
		b.ReportMetric(quantileMS(lags, 0.95), "lag-p95-ms")
	}
	b.Run("live", func(b *testing.B) { live(b, 10*time.Millisecond) })
	// A line alone in its batch: more than the master's batch delay
	// (scheduler.DefaultBatchDelay) apart.
	b.Run("live-sparse", func(b *testing.B) { live(b, scheduler.DefaultBatchDelay+50*time.Millisecond) })

	b.Run("reshjob-run", func(b *testing.B) {
		dir := b.TempDir()
		path := filepath.Join(dir, "hello.py")
		require.NoError(b, os.WriteFile(path, []byte(helloPy), 0o644))
		firstByte := func(argv ...string) (time.Duration, time.Duration) {
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Dir = dir
			cmd.Stdin = strings.NewReader("world\n")
			stdout, err := cmd.StdoutPipe()
			require.NoError(b, err)
			var errb strings.Builder
			cmd.Stderr = &errb
			start := time.Now()
			require.NoError(b, cmd.Start())
			var one [1]byte
			_, err = io.ReadFull(stdout, one[:])
			first := time.Since(start)
			_, _ = io.Copy(io.Discard, stdout)
			require.NoError(b, errors.Join(err, cmd.Wait()), "%q: %s", argv, errb.String())
			return first, time.Since(start)
		}
		remote := append([]string{filepath.Join(bin, "reshjob")}, reshjobArgs(b, d, "run", path, "a", "b")...)
		var firsts, totals, locals []time.Duration
		b.ResetTimer()
		for range b.N {
			first, total := firstByte(remote...)
			firsts, totals = append(firsts, first), append(totals, total)
			b.StopTimer()
			local, _ := firstByte(sandboxPython(), "hello.py", "a", "b")
			locals = append(locals, local)
			b.StartTimer()
		}
		b.StopTimer()
		b.ReportMetric(quantileMS(firsts, 0.5), "first-byte-ms")
		b.ReportMetric(quantileMS(firsts, 0.95), "first-byte-p95-ms")
		b.ReportMetric(quantileMS(totals, 0.5), "end-ms")
		b.ReportMetric(quantileMS(locals, 0.5), "local-ms")
	})
}

// kibPy is a typical job: hello.py printing 1 KiB.
const kibPy = "import sys\nsys.stdout.write(('hello, world\\n' * 79)[:1023] + '\\n')\n"

// BenchmarkJobStoreSize measures the store's size per job (bytes/job)
// after b.N typical jobs (hello.py, 1 KiB of stdout, finished) run
// through a standalone reshd (8 run sessions at a time): on SQLite, the
// database and its WAL after a checkpoint; on PostgreSQL, the
// pg_total_relation_size of its tables (dead rows included, before any
// vacuum). The size before the jobs is taken off. It also reports the
// jobs run per second. Run it with enough jobs
// for the fixed cost to vanish, e.g. -benchtime=1000x.
func BenchmarkJobStoreSize(b *testing.B) {
	needTools(b, "bwrap", "python3")
	ctx := context.Background()
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			var url string
			var size func() int64
			if backend == "sqlite" {
				url = filepath.Join(b.TempDir(), "jobs.db")
				size = func() int64 {
					db, err := sql.Open("sqlite", url)
					require.NoError(b, err)
					defer db.Close()
					db.SetMaxOpenConns(1)
					_, err = db.Exec("PRAGMA busy_timeout = 10000")
					require.NoError(b, err)
					_, err = db.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
					require.NoError(b, err)
					var n int64
					for _, p := range []string{url, url + "-wal"} {
						if fi, err := os.Stat(p); err == nil {
							n += fi.Size()
						}
					}
					return n
				}
			} else {
				url = pgtest.Start(b)
				size = func() int64 {
					conn, err := pgx.Connect(ctx, url)
					require.NoError(b, err)
					defer conn.Close(ctx)
					var n int64
					require.NoError(b, conn.QueryRow(ctx, `SELECT coalesce(sum(pg_total_relation_size(oid)), 0)::bigint
						FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace`).Scan(&n))
					return n
				}
			}
			d := startReshd(b, "-store", url)
			o := *d.clientOptions(b)
			before := size()
			b.ResetTimer()
			took := inParallel(b, 8, func() error {
				job := &proto.Job{Lang: "python", Name: "hello.py", Size: int64(len(kibPy))}
				s, err := openQuery(ctx, o, proto.Hello{Query: proto.QueryRun, Job: job}, []byte(kibPy))
				if err != nil {
					return err
				}
				defer s.Close()
				out := make(chan int64, 1)
				go func() {
					n, _ := io.Copy(io.Discard, s.Stdout)
					out <- n
				}()
				v, err := finish(s)
				if err != nil {
					return err
				}
				if n := <-out; v.Verdict != "OK" || n != 1024 {
					return fmt.Errorf("verdict %+v, %d bytes of stdout", v, n)
				}
				return nil
			})
			b.StopTimer()
			b.ReportMetric(float64(size()-before)/float64(b.N), "bytes/job")
			b.ReportMetric(float64(b.N)/took.Seconds(), "jobs/s")
		})
	}
}
