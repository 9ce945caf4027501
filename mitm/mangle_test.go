package mitm

import (
	"bytes"
	"testing"
)

func TestManglerClean(t *testing.T) {
	in := randomBytes(100000, 1)
	out, reps := checkMangler(t, Faults{}, in)
	if !bytes.Equal(out, in) || len(reps) != 0 {
		t.Fatalf("clean mangler changed the data (%d faults)", len(reps))
	}
}

func TestManglerAllFaults(t *testing.T) {
	in := randomBytes(200000, 2)
	f := Faults{Corrupt: 0.002, Cut: 0.001, Dup: 0.001, Inject: 0.001}
	_, reps := checkMangler(t, f, in)
	for _, k := range []int{kindCorrupt, kindCut, kindDup, kindInject} {
		if count(reps, k) == 0 {
			t.Errorf("no %s fault in 200000 bytes", kindNames[k])
		}
	}
	// Every probability at 1: each byte is hit by everything.
	checkMangler(t, Faults{Corrupt: 1, Cut: 1, Dup: 1, Inject: 1}, in[:5000])
	checkMangler(t, Faults{Corrupt: 0.5, Cut: 0.05, Dup: 0.2, Inject: 0.3}, in[:50000])
}

func TestManglerKeysDiffer(t *testing.T) {
	in := randomBytes(100000, 3)
	f := Faults{Corrupt: 0.01}
	a, _ := runMangler(f, 1, in, 4096)
	b, _ := runMangler(f, 2, in, 4096)
	if bytes.Equal(a, b) {
		t.Fatal("different seeds gave the same corruption")
	}
	if k1, k2 := streamKey(1, 1, dirUp), streamKey(1, 1, dirDown); k1 == k2 {
		t.Fatal("directions share a key")
	}
	if streamKey(1, 1, dirUp) == streamKey(1, 2, dirUp) || streamKey(1, 1, dirUp) == streamKey(2, 1, dirUp) {
		t.Fatal("connections or seeds share a key")
	}
}

// TestManglerSet checks that changing the faults takes effect from the
// next byte and that turning them off passes the rest through.
func TestManglerSet(t *testing.T) {
	in := randomBytes(20000, 4)
	var reps []report
	m := newMangler(9, 0, Faults{Corrupt: 1}, func(k int, off int64, n int) { reps = append(reps, report{k, off, n}) })
	out := m.process(nil, in[:10000])
	m.set(Faults{})
	out = m.process(out, in[10000:])
	if len(reps) != 10000 || reps[len(reps)-1].off != 9999 {
		t.Fatalf("got %d faults, last %+v", len(reps), reps[len(reps)-1])
	}
	if !bytes.Equal(out[10000:], in[10000:]) {
		t.Fatal("data after the faults were turned off is changed")
	}
}

func TestGeometric(t *testing.T) {
	if geometric(0, 1) != never || geometric(-1, 1) != never {
		t.Fatal("p <= 0 must never fire")
	}
	if geometric(1, 12345) != 0 {
		t.Fatal("p = 1 must fire on every byte")
	}
	for _, p := range []float64{0.5, 0.01, 1e-4} {
		var sum float64
		const n = 20000
		for i := range n {
			sum += float64(geometric(p, mix64(uint64(i))))
		}
		mean, want := sum/n, (1-p)/p
		if mean < 0.9*want || mean > 1.1*want {
			t.Errorf("p=%v: mean gap %.2f, want about %.2f", p, mean, want)
		}
	}
}
