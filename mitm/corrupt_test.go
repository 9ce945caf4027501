package mitm

import "testing"

func TestCorrupt(t *testing.T) {
	in := randomBytes(1<<20, 10)
	const p = 0.001
	out, reps := checkMangler(t, Faults{Corrupt: p}, in)
	if len(out) != len(in) {
		t.Fatalf("corruption changed the length: %d -> %d", len(in), len(out))
	}
	diff := 0
	for i := range in {
		if in[i] != out[i] {
			diff++
		}
	}
	if diff != len(reps) || diff != count(reps, kindCorrupt) {
		t.Fatalf("%d bytes differ, %d faults reported", diff, len(reps))
	}
	if want := p * float64(len(in)); float64(diff) < 0.8*want || float64(diff) > 1.2*want {
		t.Fatalf("%d bytes corrupted, want about %.0f", diff, want)
	}
	for b := range 256 {
		if corruptByte(5, int64(b), byte(b)) == byte(b) {
			t.Fatal("a corrupted byte kept its value")
		}
	}
}
