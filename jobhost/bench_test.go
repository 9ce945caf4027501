package jobhost_test

import (
	"bytes"
	"context"
	"testing"

	"resh/cluster"
	"resh/jobhost"
)

// heldMiB is the output of the job the benchmarks follow.
const heldMiB = 16

// BenchmarkFollow follows the 16 MiB of stdout an ended job holds, in
// chunks of cluster.MaxJobChunk, as a JobResume from offset 0 does.
func BenchmarkFollow(b *testing.B) {
	h := jobhost.New(jobhost.Config{})
	defer h.Close()
	j, err := h.Run(cluster.JobRun{ID: 1, Lease: 1, Lang: "sh"}, []byte("head -c 16M /dev/zero"), nil)
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	_, err = j.Follow(context.Background(), 0, 0, func(_ int, _ int64, data []byte) error { n += int64(len(data)); return nil })
	if err != nil || n != heldMiB<<20 {
		b.Fatalf("the job wrote %d bytes (%v)", n, err)
	}
	b.SetBytes(heldMiB << 20)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := j.Follow(context.Background(), 0, 0, func(int, int64, []byte) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFollowBaseline is the same 16 MiB copied from memory in chunks
// of cluster.MaxJobChunk, each a fresh slice: the floor of Follow.
func BenchmarkFollowBaseline(b *testing.B) {
	data := make([]byte, heldMiB<<20)
	b.SetBytes(heldMiB << 20)
	b.ReportAllocs()
	for b.Loop() {
		r := bytes.NewReader(data)
		for {
			chunk := make([]byte, cluster.MaxJobChunk)
			if n, _ := r.Read(chunk); n == 0 {
				break
			}
		}
	}
}
