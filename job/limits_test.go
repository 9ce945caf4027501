package job

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"resh/proto"
	"resh/sandbox"
)

func TestLimits(t *testing.T) {
	for _, c := range []struct {
		name    string
		asked   proto.JobLimits
		ceiling sandbox.Limits
		want    sandbox.Limits
	}{
		{"defaults", proto.JobLimits{}, sandbox.Limits{}, Defaults},
		{"asked", proto.JobLimits{WallMS: 2000, Memory: 1 << 20, Procs: 3, Output: 10}, sandbox.Limits{},
			sandbox.Limits{Wall: 2 * time.Second, CPU: 2 * time.Second, Memory: 1 << 20, Procs: 3, Output: 10, FileSize: Defaults.FileSize}},
		{"cpu apart", proto.JobLimits{WallMS: 5000, CPUMS: 1500}, sandbox.Limits{},
			sandbox.Limits{Wall: 5 * time.Second, CPU: 1500 * time.Millisecond, Memory: Defaults.Memory, Procs: 64, Output: Defaults.Output, FileSize: Defaults.FileSize}},
		{"capped by the default ceiling", proto.JobLimits{WallMS: 3_600_000, Memory: 1 << 40, Procs: 10000, Output: 1 << 40}, sandbox.Limits{},
			sandbox.Limits{Wall: DefaultCeiling.Wall, CPU: DefaultCeiling.CPU, Memory: DefaultCeiling.Memory, Procs: DefaultCeiling.Procs, Output: DefaultCeiling.Output, FileSize: Defaults.FileSize}},
		{"capped by a ceiling", proto.JobLimits{WallMS: 60_000}, sandbox.Limits{Wall: 10 * time.Second, Memory: 100 << 20, FileSize: 1 << 20},
			sandbox.Limits{Wall: 10 * time.Second, CPU: 10 * time.Second, Memory: 100 << 20, Procs: 64, Output: Defaults.Output, FileSize: 1 << 20}},
		{"negative is default", proto.JobLimits{WallMS: -1, Memory: -5}, sandbox.Limits{}, Defaults},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, Limits(c.asked, c.ceiling))
		})
	}
}

func TestExitOf(t *testing.T) {
	for _, c := range []struct {
		v    proto.Verdict
		want proto.Exit
	}{
		{proto.Verdict{Verdict: proto.VerdictOK}, proto.Exit{}},
		{proto.Verdict{Verdict: proto.VerdictRuntimeError, Status: 3}, proto.Exit{Code: 3}},
		{proto.Verdict{Verdict: proto.VerdictRuntimeError, Status: -1, Signal: 11}, proto.Exit{Signal: 11}},
		{proto.Verdict{Verdict: proto.VerdictCompileError, Status: -1}, proto.Exit{Code: proto.ExitCompileError}},
		{proto.Verdict{Verdict: proto.VerdictTimeLimit, Status: -1, Signal: 9}, proto.Exit{Code: proto.ExitTimeLimit}},
		{proto.Verdict{Verdict: proto.VerdictMemoryLimit, Status: -1}, proto.Exit{Code: proto.ExitMemoryLimit}},
		{proto.Verdict{Verdict: proto.VerdictOutputLimit, Status: -1}, proto.Exit{Code: proto.ExitOutputLimit}},
		{proto.Verdict{Verdict: proto.VerdictSandboxError, Status: -1}, proto.Exit{Code: proto.ExitSandboxError}},
		{proto.Verdict{Verdict: "NEW"}, proto.Exit{Code: proto.ExitSandboxError}},
	} {
		assert.Equal(t, c.want, ExitOf(c.v), c.v.Verdict)
	}
}
