package web

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"resh/job"
)

// base64StdDecode is the events' base64.
var base64StdDecode = base64.StdEncoding.DecodeString

func TestParseEventID(t *testing.T) {
	for _, c := range []struct {
		in     string
		n, m   int64
		failed bool
	}{
		{"0:0", 0, 0, false},
		{"12:345", 12, 345, false},
		{"9223372036854775807:1", 9223372036854775807, 1, false},
		{"9223372036854775808:1", 0, 0, true},
		{"", 0, 0, true},
		{"1", 0, 0, true},
		{"1:", 0, 0, true},
		{":1", 0, 0, true},
		{"-1:2", 0, 0, true},
		{"+1:2", 0, 0, true},
		{"1:2:3", 0, 0, true},
		{" 1:2", 0, 0, true},
	} {
		n, m, err := parseEventID(c.in)
		if c.failed {
			require.Error(t, err, c.in)
			require.Equal(t, 400, statusOf(err))
			continue
		}
		require.NoError(t, err, c.in)
		require.Equal(t, [2]int64{c.n, c.m}, [2]int64{n, m})
		require.Equal(t, c.in, eventID(n, m))
	}
}

func FuzzLastEventID(f *testing.F) {
	for _, s := range []string{"0:0", "3:5", "1:", "x", "-1:0", "99999999999999999999:0", "007:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, m, err := parseEventID(s)
		if err != nil {
			return
		}
		if n < 0 || m < 0 {
			t.Fatalf("%q: negative offsets %d, %d", s, n, m)
		}
		n2, m2, err := parseEventID(eventID(n, m))
		if err != nil || n2 != n || m2 != m {
			t.Fatalf("%q: %d:%d does not round-trip", s, n, m)
		}
	})
}

func FuzzSubmitBody(f *testing.F) {
	for _, s := range []string{
		`{"lang":"sh","source":"echo"}`,
		`{"lang":"c","name":"a.c","source":"int main(){}","args":["a"],"stdin":"x","limits":{"wall_ms":1,"cpu_ms":2,"memory":3,"procs":4,"output":5}}`,
		`{"lang":"sh","source":"echo","limits":{"wall_ms":-1}}`,
		`{"lang":"sh","source":"echo"}x`,
		`{"lang":"sh","source":"echo","stdin":null,"limits":null,"args":null}`,
		`null`, `[]`, `{"lang":1}`, ``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		sub, err := decodeSubmit(strings.NewReader(body))
		if err != nil {
			if s := statusOf(err); s != 400 && s != 413 {
				t.Fatalf("%q: status %d", body, s)
			}
			return
		}
		j := sub.job
		switch {
		case j.Lang == "" || len(sub.source) == 0 || j.Name == "":
			t.Fatalf("%q: accepted without lang, source or name", body)
		case len(sub.source) > job.MaxSource || int64(len(sub.source)) != j.Size:
			t.Fatalf("%q: source size", body)
		case len(j.Args) > maxArgs:
			t.Fatalf("%q: %d args", body, len(j.Args))
		case j.Limits.WallMS < 0 || j.Limits.CPUMS < 0 || j.Limits.Memory < 0 || j.Limits.Procs < 0 || j.Limits.Output < 0:
			t.Fatalf("%q: negative limits %+v", body, j.Limits)
		}
	})
}
