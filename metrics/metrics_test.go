package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/connection"
	"resh/proto"
	"resh/server"
	"resh/store"
)

// fake is a set of Sources with known values.
func fake() Sources {
	return Sources{
		Server: func() server.Stats {
			return server.Stats{Sessions: 3, Links: 2, Connection: connection.ServerStats{
				Sessions: 5,
				Total: connection.Stats{
					FramesSent: 100, FramesReceived: 90, BytesSent: 4096, BytesReceived: 2048,
					Retransmits: 7, Timeouts: 2, Probes: 1, NaksSent: 4, NaksReceived: 6, Damaged: 9, Resumes: 11,
				},
			}}
		},
		Executors: func() []proto.ExecutorInfo {
			return []proto.ExecutorInfo{
				{Name: "a", State: proto.StateUp, Tasks: 1, MaxTasks: 4, CPU: 12.5, MaxCPU: 100},
				{Name: "b", State: proto.StateFull, Tasks: 2, MaxTasks: 2, CPU: 80, MaxCPU: 90},
				{Name: "c", State: proto.StateFull, Tasks: 0, MaxTasks: 0, CPU: 0, MaxCPU: 100},
			}
		},
		Jobs: func(context.Context) (map[store.State]int, error) {
			return map[store.State]int{store.Queued: 8, store.Running: 2, store.Finished: 40}, nil
		},
		Ended:   func() map[string]uint64 { return map[string]uint64{proto.VerdictOK: 30, proto.VerdictTimeLimit: 4} },
		Waiting: func() int { return 6 },
		Version: "1.2.3",
	}
}

const want = `
# HELP resh_build_info Always 1; the version of this reshd in its label.
# TYPE resh_build_info gauge
resh_build_info{version="1.2.3"} 1
# HELP resh_sessions Resh sessions served now: commands, shells and jobs' sessions, running here, queued or relayed to an executor.
# TYPE resh_sessions gauge
resh_sessions 3
# HELP resh_connection_sessions Connection-layer sessions the listener holds now: clients' and executors' links, attached or waiting for a resume.
# TYPE resh_connection_sessions gauge
resh_connection_sessions 5
# HELP resh_connection_resumes_total Transports attached to a session after its first: resumes after a drop.
# TYPE resh_connection_resumes_total counter
resh_connection_resumes_total 11
# HELP resh_connection_retransmits_total DATA frames sent again.
# TYPE resh_connection_retransmits_total counter
resh_connection_retransmits_total 7
# HELP resh_connection_damaged_frames_total Frames or runs of bytes received damaged and dropped.
# TYPE resh_connection_damaged_frames_total counter
resh_connection_damaged_frames_total 9
# HELP resh_connection_naks_sent_total NAKs sent: requests to resend after a gap or damage.
# TYPE resh_connection_naks_sent_total counter
resh_connection_naks_sent_total 4
# HELP resh_connection_naks_received_total NAKs received.
# TYPE resh_connection_naks_received_total counter
resh_connection_naks_received_total 6
# HELP resh_connection_retransmission_timeouts_total Retransmission timeouts.
# TYPE resh_connection_retransmission_timeouts_total counter
resh_connection_retransmission_timeouts_total 2
# HELP resh_connection_probes_total Tail probes: PINGs sent after two round trips without an acknowledgement.
# TYPE resh_connection_probes_total counter
resh_connection_probes_total 1
# HELP resh_connection_frames_sent_total Frames sent.
# TYPE resh_connection_frames_sent_total counter
resh_connection_frames_sent_total 100
# HELP resh_connection_frames_received_total Frames received intact.
# TYPE resh_connection_frames_received_total counter
resh_connection_frames_received_total 90
# HELP resh_connection_sent_bytes_total Payload bytes sent, retransmissions included.
# TYPE resh_connection_sent_bytes_total counter
resh_connection_sent_bytes_total 4096
# HELP resh_connection_received_bytes_total Payload bytes received, retransmissions included.
# TYPE resh_connection_received_bytes_total counter
resh_connection_received_bytes_total 2048
# HELP resh_executors Executors known, by state (up, full, lost, starting).
# TYPE resh_executors gauge
resh_executors{state="full"} 2
resh_executors{state="lost"} 0
resh_executors{state="starting"} 0
resh_executors{state="up"} 1
# HELP resh_executor_tasks Tasks (sessions and jobs) an executor runs now.
# TYPE resh_executor_tasks gauge
resh_executor_tasks{executor="a"} 1
resh_executor_tasks{executor="b"} 2
resh_executor_tasks{executor="c"} 0
# HELP resh_executor_max_tasks An executor's limit on concurrent tasks; 0 for none.
# TYPE resh_executor_max_tasks gauge
resh_executor_max_tasks{executor="a"} 4
resh_executor_max_tasks{executor="b"} 2
resh_executor_max_tasks{executor="c"} 0
# HELP resh_executor_cpu_percent An executor's CPU use at its last report, in percent of all its cores.
# TYPE resh_executor_cpu_percent gauge
resh_executor_cpu_percent{executor="a"} 12.5
resh_executor_cpu_percent{executor="b"} 80
resh_executor_cpu_percent{executor="c"} 0
# HELP resh_executor_max_cpu_percent An executor's CPU limit, in percent of all its cores; 100 for none.
# TYPE resh_executor_max_cpu_percent gauge
resh_executor_max_cpu_percent{executor="a"} 100
resh_executor_max_cpu_percent{executor="b"} 90
resh_executor_max_cpu_percent{executor="c"} 100
# HELP resh_queue_sessions Resh sessions queued for an executor.
# TYPE resh_queue_sessions gauge
resh_queue_sessions 6
# HELP resh_jobs Jobs in the store, by state (every state, 0 for none).
# TYPE resh_jobs gauge
resh_jobs{state="cancelled"} 0
resh_jobs{state="failed"} 0
resh_jobs{state="finished"} 40
resh_jobs{state="queued"} 8
resh_jobs{state="running"} 2
# HELP resh_queue_jobs Jobs queued in the store, waiting for an executor.
# TYPE resh_queue_jobs gauge
resh_queue_jobs 8
# HELP resh_store_up 1 if the job store answered this scrape, 0 if it failed.
# TYPE resh_store_up gauge
resh_store_up 1
# HELP resh_jobs_ended_total Jobs this master ended, by verdict (OK, TIME_LIMIT, CANCELLED, EXECUTOR_LOST...).
# TYPE resh_jobs_ended_total counter
resh_jobs_ended_total{verdict="OK"} 30
resh_jobs_ended_total{verdict="TIME_LIMIT"} 4
`

// Each metric carries the value its source gave.
func TestCollectorValues(t *testing.T) {
	require.NoError(t, testutil.CollectAndCompare(newCollector(fake()), strings.NewReader(want)))
}

// The whole registry, scraped over HTTP as Prometheus would: every resh
// metric and the standard go_ and process_ ones.
func TestScrape(t *testing.T) {
	reg := New(fake())
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	require.NoError(t, testutil.ScrapeAndCompare(srv.URL, strings.NewReader(want), metricNames(t, want)...))
	body := scrape(t, srv.URL, http.StatusOK)
	assert.Contains(t, body, "go_goroutines ")
	assert.Contains(t, body, "process_cpu_seconds_total ")
}

// promtool's lint finds nothing to say of the resh metrics, nor of the
// registry as a whole.
func TestLint(t *testing.T) {
	problems, err := testutil.CollectAndLint(newCollector(fake()))
	require.NoError(t, err)
	assert.Empty(t, problems)
	problems, err = testutil.GatherAndLint(New(fake()))
	require.NoError(t, err)
	assert.Empty(t, problems)
}

// One metric alone reads as its value.
func TestToFloat64(t *testing.T) {
	src := Sources{Waiting: func() int { return 42 }}
	only := func(name string, c prometheus.Collector) prometheus.Collector {
		return filtered{c, name}
	}
	assert.Equal(t, 42.0, testutil.ToFloat64(only("resh_queue_sessions", newCollector(src))))
	assert.Equal(t, 1.0, testutil.ToFloat64(only("resh_build_info", newCollector(src))))
}

// A source not set leaves its metrics out; the build's info stays.
func TestNilSources(t *testing.T) {
	c := newCollector(Sources{Version: "v"})
	assert.Equal(t, 1, testutil.CollectAndCount(c))
	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

// A store that fails at scrape time is an error the scrape shows, not a
// panic: promhttp's default handler answers 500 with it; Handler serves
// the rest with resh_store_up 0, and logs it.
func TestJobsError(t *testing.T) {
	src := fake()
	src.Jobs = func(context.Context) (map[store.State]int, error) {
		return nil, errors.New("database is locked")
	}
	reg := New(src)

	strict := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer strict.Close()
	body := scrape(t, strict.URL, http.StatusInternalServerError)
	assert.Contains(t, body, "metrics: counting the jobs: database is locked")

	var logged strings.Builder
	lenient := httptest.NewServer(Handler(reg, slogTo(&logged)))
	defer lenient.Close()
	body = scrape(t, lenient.URL, http.StatusOK)
	assert.Contains(t, body, "resh_store_up 0")
	assert.Contains(t, body, "resh_sessions 3")
	assert.NotContains(t, body, "resh_jobs{")
	assert.Contains(t, logged.String(), "database is locked")
}

// Sources.Jobs gets a context with a deadline.
func TestJobsDeadline(t *testing.T) {
	src := Sources{Jobs: func(ctx context.Context) (map[store.State]int, error) {
		_, ok := ctx.Deadline()
		assert.True(t, ok, "no deadline")
		return nil, nil
	}}
	require.NoError(t, testutil.CollectAndCompare(newCollector(src), strings.NewReader(`
# HELP resh_jobs Jobs in the store, by state (every state, 0 for none).
# TYPE resh_jobs gauge
resh_jobs{state="cancelled"} 0
resh_jobs{state="failed"} 0
resh_jobs{state="finished"} 0
resh_jobs{state="queued"} 0
resh_jobs{state="running"} 0
`), "resh_jobs"))
}

// scrape GETs url and returns its body, checking the status.
func scrape(t *testing.T, url string, status int) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, status, resp.StatusCode, "body: %s", b)
	return string(b)
}

// metricNames lists the metrics of an exposition text.
func metricNames(t *testing.T, text string) []string {
	t.Helper()
	var names []string
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			names = append(names, f[2])
		}
	}
	require.NotEmpty(t, names)
	return names
}

// filtered is a collector's metrics of one name only.
type filtered struct {
	prometheus.Collector
	name string
}

func (f filtered) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric)
	go func() { f.Collector.Collect(all); close(all) }()
	for m := range all {
		if strings.Contains(m.Desc().String(), `fqName: "`+f.name+`"`) {
			ch <- m
		}
	}
}
