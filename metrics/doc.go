// Package metrics exposes a master's state to Prometheus: a registry
// (New) whose collectors read their Sources at each scrape (no polling
// goroutine), with the Go runtime's go_* and the process's process_*
// metrics beside resh's, served by Handler (GET /metrics).
//
// A metric whose source is not set is left out. A job store that fails
// at a scrape makes resh_jobs an invalid metric: the registry returns
// the error (promhttp's default handler answers 500 with it; Handler
// logs it and serves the rest, with resh_store_up 0).
//
// | metric | type | labels | what |
// |---|---|---|---|
// | resh_build_info | gauge | version | always 1; this reshd's version |
// | resh_sessions | gauge | | resh sessions served now: commands, shells, jobs' sessions, running here, queued or relayed |
// | resh_queue_sessions | gauge | | sessions queued for an executor |
// | resh_jobs | gauge | state | jobs in the store by state: queued, running, finished, cancelled, failed (each present, 0 for none) |
// | resh_queue_jobs | gauge | | jobs queued in the store (resh_jobs{state="queued"}) |
// | resh_store_up | gauge | | 1 if the job store answered this scrape, else 0 |
// | resh_jobs_ended_total | counter | verdict | jobs this master ended, by verdict (OK, COMPILE_ERROR, RUNTIME_ERROR, TIME_LIMIT, MEMORY_LIMIT, OUTPUT_LIMIT, SANDBOX_ERROR, CANCELLED, EXECUTOR_LOST); since it started |
// | resh_executors | gauge | state | executors by state: up, full, lost, starting (each present) |
// | resh_executor_tasks | gauge | executor | tasks an executor runs now |
// | resh_executor_max_tasks | gauge | executor | its task limit; 0 for none |
// | resh_executor_cpu_percent | gauge | executor | its CPU use at its last report, percent of all its cores |
// | resh_executor_max_cpu_percent | gauge | executor | its CPU limit, percent; 100 for none |
// | resh_connection_sessions | gauge | | connection-layer sessions on the listener now: clients' and executors' links |
// | resh_connection_resumes_total | counter | | transports attached to a session after its first (resumes after a drop) |
// | resh_connection_retransmits_total | counter | | DATA frames sent again |
// | resh_connection_damaged_frames_total | counter | | frames or runs of bytes received damaged and dropped |
// | resh_connection_naks_sent_total | counter | | NAKs sent (resend requests) |
// | resh_connection_naks_received_total | counter | | NAKs received |
// | resh_connection_retransmission_timeouts_total | counter | | retransmission timeouts |
// | resh_connection_probes_total | counter | | tail probes (PING after two round trips without an acknowledgement) |
// | resh_connection_frames_sent_total | counter | | frames sent |
// | resh_connection_frames_received_total | counter | | frames received intact |
// | resh_connection_sent_bytes_total | counter | | payload bytes sent, retransmissions included |
// | resh_connection_received_bytes_total | counter | | payload bytes received, retransmissions included |
//
// The resh_connection_* counters add up every session the listener
// served since the start, ended ones included. resh_jobs and
// resh_queue_jobs count the whole store (every master sharing it);
// resh_jobs_ended_total counts the jobs this master ended.
package metrics
