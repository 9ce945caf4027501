package mitm

import "testing"

func TestCut(t *testing.T) {
	in := randomBytes(1<<20, 11)
	const p = 0.0005
	out, reps := checkMangler(t, Faults{Cut: p}, in)
	removed := 0
	for _, r := range reps {
		if r.kind != kindCut || r.n < 1 || r.n > maxRun {
			t.Fatalf("bad fault %+v", r)
		}
		removed += min(r.n, len(in)-int(r.off))
	}
	if len(out) != len(in)-removed {
		t.Fatalf("output %d bytes, want %d - %d", len(out), len(in), removed)
	}
	if n, want := float64(len(reps)), p*float64(len(in)); n < 0.7*want || n > 1.3*want {
		t.Fatalf("%v cuts, want about %.0f", n, want)
	}
}
