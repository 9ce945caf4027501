package reshdcmd

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"resh/internal/cli"
	"resh/sandbox"
)

// ceilingKeys name the limits -job-ceiling sets, as reshjob's options do.
const ceilingKeys = "time, cpu, mem, procs, output, fsize"

// parseCeiling parses -job-ceiling's KEY=VALUE[,KEY=VALUE...]: the most a
// submitted program may ask for, each limit left out keeping its default
// ceiling (package job).
func parseCeiling(s string) (sandbox.Limits, error) {
	var l sandbox.Limits
	if strings.TrimSpace(s) == "" {
		return l, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || v == "" {
			return l, fmt.Errorf("-job-ceiling: %q is not KEY=VALUE (keys: %s)", kv, ceilingKeys)
		}
		var err error
		switch k {
		case "time", "cpu":
			var d time.Duration
			d, err = time.ParseDuration(v)
			if err == nil && d <= 0 {
				err = fmt.Errorf("must be positive")
			}
			if k == "time" {
				l.Wall = d
			} else {
				l.CPU = d
			}
		case "mem":
			l.Memory, err = cli.ParseSize(v)
		case "output":
			l.Output, err = cli.ParseSize(v)
		case "fsize":
			l.FileSize, err = cli.ParseSize(v)
		case "procs":
			l.Procs, err = strconv.Atoi(v)
			if err == nil && l.Procs <= 0 {
				err = fmt.Errorf("must be positive")
			}
		default:
			return l, fmt.Errorf("-job-ceiling: unknown limit %q (keys: %s)", k, ceilingKeys)
		}
		if err != nil {
			return l, fmt.Errorf("-job-ceiling: %s=%s: %v", k, v, err)
		}
	}
	return l, nil
}
