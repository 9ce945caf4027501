//go:build !linux

package server

import (
	"io"
	"os"
)

// newPipeTee returns in and out: tee(2) is Linux's.
func newPipeTee(in, out *os.File) (io.Reader, io.Writer) { return in, out }
