package cli

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseSize parses a byte count: a positive integer of bytes, or followed
// by K, M or G (powers of 1024, either case, optionally followed by B or
// iB): "65536", "64K", "512M", "1G", "1GiB".
func ParseSize(s string) (int64, error) {
	num := strings.TrimSpace(s)
	if t, ok := strings.CutSuffix(num, "iB"); ok && t != "" && strings.ContainsAny(t[len(t)-1:], "kKmMgG") {
		num = t
	} else if len(num) > 1 && (num[len(num)-1] == 'B' || num[len(num)-1] == 'b') {
		num = num[:len(num)-1]
	}
	mult := int64(1)
	if num != "" {
		switch num[len(num)-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
	}
	if mult > 1 {
		num = num[:len(num)-1]
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("want a positive size such as 512M, 1G, 64K or a number of bytes, not %q", s)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * mult, nil
}
