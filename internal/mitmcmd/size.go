package mitmcmd

import (
	"errors"
	"strconv"
	"strings"
)

// size is a byte count flag: an integer with an optional k, m or g suffix
// (powers of 1024).
type size struct{ n *int64 }

func (s size) String() string {
	if s.n == nil {
		return "0"
	}
	return strconv.FormatInt(*s.n, 10)
}

func (s size) Set(v string) error {
	mult := int64(1)
	switch strings.ToLower(v[len(v)-min(1, len(v)):]) {
	case "k":
		mult = 1 << 10
	case "m":
		mult = 1 << 20
	case "g":
		mult = 1 << 30
	}
	if mult > 1 {
		v = v[:len(v)-1]
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return errors.New("not a byte count")
	}
	if n < 0 {
		return errors.New("negative")
	}
	*s.n = n * mult
	return nil
}
