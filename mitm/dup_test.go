package mitm

import "testing"

func TestDup(t *testing.T) {
	in := randomBytes(1<<20, 12)
	const p = 0.0005
	out, reps := checkMangler(t, Faults{Dup: p}, in)
	added := 0
	for _, r := range reps {
		if r.kind != kindDup || r.n < 1 || r.n > maxRun {
			t.Fatalf("bad fault %+v", r)
		}
		added += r.n
	}
	if len(out) != len(in)+added {
		t.Fatalf("output %d bytes, want %d + %d", len(out), len(in), added)
	}
	if n, want := float64(len(reps)), p*float64(len(in)); n < 0.7*want || n > 1.3*want {
		t.Fatalf("%v dups, want about %.0f", n, want)
	}
	// A dup at offset 0 has nothing to repeat.
	out, reps = checkMangler(t, Faults{Dup: 1}, []byte("abc"))
	if len(reps) != 2 || string(out[:2]) != "aa" {
		t.Fatalf("dup of abc with p=1: %q, %+v", out, reps)
	}
}
