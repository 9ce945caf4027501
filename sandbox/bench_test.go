package sandbox

import (
	"context"
	"os/exec"
	"testing"
)

// BenchmarkRun measures a sandboxed `true`: the sandbox's own cost per job.
func BenchmarkRun(b *testing.B) {
	if err := Available(); err != nil {
		b.Fatal(err)
	}
	dir := workDir(b)
	for b.Loop() {
		res, err := Run(context.Background(), Spec{Dir: dir, Argv: []string{"true"}})
		if err != nil || res.Outcome != Exited || res.Code != 0 {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkExecBaseline is the same `true` started directly.
func BenchmarkExecBaseline(b *testing.B) {
	for b.Loop() {
		if err := exec.Command("true").Run(); err != nil {
			b.Fatal(err)
		}
	}
}
