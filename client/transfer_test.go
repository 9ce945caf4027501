package client

import (
	"testing"

	"resh/proto"
)

func TestParseFileSwitches(t *testing.T) {
	o, err := Parse([]string{"-no-files", "-v", "-allow", ".bashrc", "h"})
	if err != nil || !o.NoFiles || !o.Verbose || len(o.Allow) != 1 {
		t.Fatalf("Parse: %+v, %v", o, err)
	}
}

func TestAnnouncement(t *testing.T) {
	for _, c := range []struct {
		op   string
		size int64
		want string
	}{
		{proto.OpRead, 12 << 20, "lcat: reading f (12.0 MiB)"},
		{proto.OpRead, -1, "lcat: reading f"},
		{proto.OpWrite, 0, "ltee: writing f"},
		{proto.OpAppend, 10, "ltee: appending to f"},
	} {
		if got := announcement(proto.TransferOpen{Op: c.op, Path: "f"}, c.size); got != c.want {
			t.Errorf("%s %d: %q, want %q", c.op, c.size, got, c.want)
		}
	}
}
