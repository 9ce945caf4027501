package mitm

import (
	"bytes"
	"testing"
)

func TestInject(t *testing.T) {
	in := randomBytes(1<<20, 13)
	const p = 0.0005
	out, reps := checkMangler(t, Faults{Inject: p}, in)
	// Removing the reported runs gives back the input.
	var back []byte
	pos := 0
	prev := int64(0)
	for _, r := range reps {
		if r.kind != kindInject || r.n < 1 || r.n > maxRun {
			t.Fatalf("bad fault %+v", r)
		}
		n := int(r.off - prev)
		back = append(back, out[pos:pos+n]...)
		pos += n + r.n
		prev = r.off
	}
	back = append(back, out[pos:]...)
	if !bytes.Equal(back, in) {
		t.Fatal("input not found around the injected runs")
	}
	if n, want := float64(len(reps)), p*float64(len(in)); n < 0.7*want || n > 1.3*want {
		t.Fatalf("%v injections, want about %.0f", n, want)
	}
}
