package jobhost

import (
	"math"
	"os"

	"resh/job"
	"resh/proto"
	"resh/sandbox"
)

// warmSandboxes is how many sandboxes NewPool keeps built ahead of jobs.
const warmSandboxes = 2

// NewPool returns a sandbox pool for the jobs of a Host whose ceiling is
// ceiling (Config.Pool), as a standalone reshd's: /tmp and /dev/shm are
// bounded by the most a compile or a program may have. It builds nothing
// before its first job; close it after the Host.
func NewPool(ceiling sandbox.Limits) *sandbox.Pool {
	most := job.Limits(proto.JobLimits{Memory: math.MaxInt64}, ceiling).Memory
	return sandbox.NewPool(os.TempDir(), warmSandboxes, sandbox.Options{TmpSize: max(most, job.CompileLimits.Memory)})
}
