package cli

import "testing"

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"1": 1, "65536": 65536, "64K": 64 << 10, "64k": 64 << 10, "512M": 512 << 20, "1G": 1 << 30, "2g": 2 << 30,
		"1GiB": 1 << 30, "64KB": 64 << 10, "100B": 100, " 3M ": 3 << 20, "8589934591G": 8589934591 << 30,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "M", "B", "iB", "1.5G", "1T", "12Q", "1 G", "K1", "8589934592G", "99999999999999999999"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}
