package scheduler

import (
	"encoding/json"
	"fmt"

	"resh/cluster"
	"resh/proto"
	"resh/store"
)

// verdictOf is the Verdict and Exit of an ended job: those its executor
// sent for a finished one, CANCELLED (exit 119) or EXECUTOR_LOST (120)
// for one that did not run to its end, and SANDBOX_ERROR (125) for one
// the master failed otherwise.
func verdictOf(j store.Job) (proto.Verdict, proto.Exit) {
	switch j.State {
	case store.Finished:
		var end cluster.JobEnd
		if err := json.Unmarshal(j.Result, &end); err == nil && end.Verdict.Verdict != "" {
			return end.Verdict, end.Exit
		}
		return proto.Verdict{Verdict: proto.VerdictSandboxError, Detail: "the job's stored verdict cannot be read", Status: -1, Executor: j.Executor},
			proto.Exit{Code: proto.ExitSandboxError}
	case store.Cancelled:
		detail := "cancelled"
		if j.Reason != "" {
			detail += ": " + j.Reason
		}
		return proto.Verdict{Verdict: proto.VerdictCancelled, Detail: detail, Status: -1, Executor: j.Executor, Stdout: j.StdoutLen, Stderr: j.StderrLen},
			proto.Exit{Code: proto.ExitCancelled}
	case store.Failed:
		if j.Reason == store.ReasonExecutorLost {
			return proto.Verdict{
				Verdict: proto.VerdictExecutorLost, Status: -1, Executor: j.Executor, Stdout: j.StdoutLen, Stderr: j.StderrLen,
				Detail: fmt.Sprintf("the job's executor was lost on each of its %d attempts", j.Attempts),
			}, proto.Exit{Code: proto.ExitExecutorLost}
		}
		return proto.Verdict{Verdict: proto.VerdictSandboxError, Detail: j.Reason, Status: -1, Executor: j.Executor, Stdout: j.StdoutLen, Stderr: j.StderrLen},
			proto.Exit{Code: proto.ExitSandboxError}
	}
	return proto.Verdict{}, proto.Exit{}
}
