package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"resh/proto"
	"resh/server"
	"resh/store"
)

// Sources is where the metrics come from, read at every scrape. A nil
// function leaves its metrics out (a reshd without a job store has no
// resh_jobs); Version is always there.
type Sources struct {
	// Server gives the sessions served and the connection layer's counters
	// (server.Server.Stats): resh_sessions, resh_connection_*.
	Server func() server.Stats
	// Executors lists the executors (cluster.Master.Executors):
	// resh_executors and resh_executor_*.
	Executors func() []proto.ExecutorInfo
	// Jobs counts the jobs in the store by state (store.Store.Count):
	// resh_jobs, resh_queue_jobs and resh_store_up. It gets JobsTimeout.
	Jobs func(ctx context.Context) (map[store.State]int, error)
	// Ended counts the jobs this master ended, by verdict
	// (scheduler.Scheduler.Ended): resh_jobs_ended_total.
	Ended func() map[string]uint64
	// Waiting counts the sessions queued for an executor
	// (cluster.Master.Waiting): resh_queue_sessions.
	Waiting func() int
	// Version is the build's version: resh_build_info{version}.
	Version string
}

// JobsTimeout bounds how long a scrape waits for Sources.Jobs.
const JobsTimeout = 5 * time.Second

// jobStates are the states resh_jobs always has, 0 for none.
var jobStates = []store.State{store.Queued, store.Running, store.Finished, store.Cancelled, store.Failed}

// executorStates are the states resh_executors always has, 0 for none.
var executorStates = []string{proto.StateUp, proto.StateFull, proto.StateLost, proto.StateStarting}

// New returns a registry holding the metrics of src, computed at each
// scrape, with the Go runtime's (go_*) and the process's (process_*).
// Serve it with Handler.
func New(src Sources) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newCollector(src),
	)
	return reg
}

// Handler serves reg in the Prometheus text format (or what the scraper
// negotiates). A metric that cannot be read at this scrape (the job store
// failing) is left out of the answer and logged to log (nil: not logged);
// the rest is served, and resh_store_up says the store failed.
func Handler(reg *prometheus.Registry, log *slog.Logger) http.Handler {
	opts := promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}
	if log != nil {
		opts.ErrorLog = errorLog{log}
	}
	return promhttp.HandlerFor(reg, opts)
}

// errorLog is promhttp's logger over slog.
type errorLog struct{ log *slog.Logger }

func (l errorLog) Println(v ...any) {
	l.log.Warn("metrics: " + fmt.Sprint(v...))
}

// desc is one metric of the collector, with its labels.
func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	descBuildInfo = desc("resh_build_info", "Always 1; the version of this reshd in its label.", "version")

	descSessions       = desc("resh_sessions", "Resh sessions served now: commands, shells and jobs' sessions, running here, queued or relayed to an executor.")
	descConnSessions   = desc("resh_connection_sessions", "Connection-layer sessions the listener holds now: clients' and executors' links, attached or waiting for a resume.")
	descResumes        = desc("resh_connection_resumes_total", "Transports attached to a session after its first: resumes after a drop.")
	descRetransmits    = desc("resh_connection_retransmits_total", "DATA frames sent again.")
	descDamaged        = desc("resh_connection_damaged_frames_total", "Frames or runs of bytes received damaged and dropped.")
	descNaksSent       = desc("resh_connection_naks_sent_total", "NAKs sent: requests to resend after a gap or damage.")
	descNaksReceived   = desc("resh_connection_naks_received_total", "NAKs received.")
	descTimeouts       = desc("resh_connection_retransmission_timeouts_total", "Retransmission timeouts.")
	descProbes         = desc("resh_connection_probes_total", "Tail probes: PINGs sent after two round trips without an acknowledgement.")
	descFramesSent     = desc("resh_connection_frames_sent_total", "Frames sent.")
	descFramesReceived = desc("resh_connection_frames_received_total", "Frames received intact.")
	descBytesSent      = desc("resh_connection_sent_bytes_total", "Payload bytes sent, retransmissions included.")
	descBytesReceived  = desc("resh_connection_received_bytes_total", "Payload bytes received, retransmissions included.")

	descExecutors     = desc("resh_executors", "Executors known, by state (up, full, lost, starting).", "state")
	descExecTasks     = desc("resh_executor_tasks", "Tasks (sessions and jobs) an executor runs now.", "executor")
	descExecMaxTasks  = desc("resh_executor_max_tasks", "An executor's limit on concurrent tasks; 0 for none.", "executor")
	descExecCPU       = desc("resh_executor_cpu_percent", "An executor's CPU use at its last report, in percent of all its cores.", "executor")
	descExecMaxCPU    = desc("resh_executor_max_cpu_percent", "An executor's CPU limit, in percent of all its cores; 100 for none.", "executor")
	descQueueSessions = desc("resh_queue_sessions", "Resh sessions queued for an executor.")
	descJobs          = desc("resh_jobs", "Jobs in the store, by state (every state, 0 for none).", "state")
	descQueueJobs     = desc("resh_queue_jobs", "Jobs queued in the store, waiting for an executor.")
	descStoreUp       = desc("resh_store_up", "1 if the job store answered this scrape, 0 if it failed.")
	descEnded         = desc("resh_jobs_ended_total", "Jobs this master ended, by verdict (OK, TIME_LIMIT, CANCELLED, EXECUTOR_LOST...).", "verdict")
	connDescs         = []*prometheus.Desc{descConnSessions, descResumes, descRetransmits, descDamaged, descNaksSent, descNaksReceived, descTimeouts, descProbes, descFramesSent, descFramesReceived, descBytesSent, descBytesReceived}
	executorDescs     = []*prometheus.Desc{descExecutors, descExecTasks, descExecMaxTasks, descExecCPU, descExecMaxCPU}
	jobsDescs         = []*prometheus.Desc{descJobs, descQueueJobs, descStoreUp}
)

// collector computes every resh_* metric from its Sources at each scrape.
type collector struct{ src Sources }

func newCollector(src Sources) *collector { return &collector{src: src} }

// Describe implements prometheus.Collector: the metrics of the sources
// set.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descBuildInfo
	if c.src.Server != nil {
		ch <- descSessions
		for _, d := range connDescs {
			ch <- d
		}
	}
	if c.src.Executors != nil {
		for _, d := range executorDescs {
			ch <- d
		}
	}
	if c.src.Waiting != nil {
		ch <- descQueueSessions
	}
	if c.src.Jobs != nil {
		for _, d := range jobsDescs {
			ch <- d
		}
	}
	if c.src.Ended != nil {
		ch <- descEnded
	}
}

// Collect implements prometheus.Collector: it reads every source now.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descBuildInfo, prometheus.GaugeValue, 1, c.src.Version)
	if c.src.Server != nil {
		collectServer(ch, c.src.Server())
	}
	if c.src.Executors != nil {
		collectExecutors(ch, c.src.Executors())
	}
	if c.src.Waiting != nil {
		ch <- prometheus.MustNewConstMetric(descQueueSessions, prometheus.GaugeValue, float64(c.src.Waiting()))
	}
	if c.src.Jobs != nil {
		c.collectJobs(ch)
	}
	if c.src.Ended != nil {
		for v, n := range c.src.Ended() {
			ch <- prometheus.MustNewConstMetric(descEnded, prometheus.CounterValue, float64(n), v)
		}
	}
}

func collectServer(ch chan<- prometheus.Metric, st server.Stats) {
	gauge := func(d *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(descSessions, st.Sessions)
	gauge(descConnSessions, st.Connection.Sessions)
	t := st.Connection.Total
	counter(descResumes, t.Resumes)
	counter(descRetransmits, t.Retransmits)
	counter(descDamaged, t.Damaged)
	counter(descNaksSent, t.NaksSent)
	counter(descNaksReceived, t.NaksReceived)
	counter(descTimeouts, t.Timeouts)
	counter(descProbes, t.Probes)
	counter(descFramesSent, t.FramesSent)
	counter(descFramesReceived, t.FramesReceived)
	counter(descBytesSent, t.BytesSent)
	counter(descBytesReceived, t.BytesReceived)
}

func collectExecutors(ch chan<- prometheus.Metric, execs []proto.ExecutorInfo) {
	byState := make(map[string]int, len(executorStates))
	for _, s := range executorStates {
		byState[s] = 0
	}
	for _, e := range execs {
		byState[e.State]++
		ch <- prometheus.MustNewConstMetric(descExecTasks, prometheus.GaugeValue, float64(e.Tasks), e.Name)
		ch <- prometheus.MustNewConstMetric(descExecMaxTasks, prometheus.GaugeValue, float64(e.MaxTasks), e.Name)
		ch <- prometheus.MustNewConstMetric(descExecCPU, prometheus.GaugeValue, e.CPU, e.Name)
		ch <- prometheus.MustNewConstMetric(descExecMaxCPU, prometheus.GaugeValue, e.MaxCPU, e.Name)
	}
	for s, n := range byState {
		ch <- prometheus.MustNewConstMetric(descExecutors, prometheus.GaugeValue, float64(n), s)
	}
}

// collectJobs asks the store; its failure is an invalid metric (the
// registry reports the error) and resh_store_up 0.
func (c *collector) collectJobs(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), JobsTimeout)
	defer cancel()
	n, err := c.src.Jobs(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descStoreUp, prometheus.GaugeValue, 0)
		ch <- prometheus.NewInvalidMetric(descJobs, fmt.Errorf("metrics: counting the jobs: %w", err))
		return
	}
	ch <- prometheus.MustNewConstMetric(descStoreUp, prometheus.GaugeValue, 1)
	for _, s := range jobStates {
		ch <- prometheus.MustNewConstMetric(descJobs, prometheus.GaugeValue, float64(n[s]), string(s))
	}
	ch <- prometheus.MustNewConstMetric(descQueueJobs, prometheus.GaugeValue, float64(n[store.Queued]))
}
