package reshjobcmd

import (
	"fmt"
	"strconv"
	"strings"
)

// Offsets are where in a job's stored stdout and stderr an attach starts:
// the bytes a client has already written of each.
type Offsets struct {
	Stdout, Stderr int64
}

// String is the -from value that gives o: "N:M", or "N" when both are N.
func (o Offsets) String() string {
	if o.Stdout == o.Stderr {
		return strconv.FormatInt(o.Stdout, 10)
	}
	return fmt.Sprintf("%d:%d", o.Stdout, o.Stderr)
}

// ParseFrom parses attach's -from value "N[:M]": byte N of stdout and M
// of stderr, N alone for both; empty is the start.
func ParseFrom(s string) (Offsets, error) {
	if s == "" {
		return Offsets{}, nil
	}
	out, errs, two := strings.Cut(s, ":")
	n, err := parseOffset(out)
	if err != nil {
		return Offsets{}, usagef("-from: %q is not N or N:M (byte offsets of stdout and stderr)", s)
	}
	m := n
	if two {
		if m, err = parseOffset(errs); err != nil {
			return Offsets{}, usagef("-from: %q is not N or N:M (byte offsets of stdout and stderr)", s)
		}
	}
	return Offsets{Stdout: n, Stderr: m}, nil
}

// parseOffset parses a byte offset: a number, 0 or more.
func parseOffset(s string) (int64, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseInt(s, 10, 64)
}
