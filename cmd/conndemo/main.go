// Command conndemo pushes data through a connection session over a damaged
// path (an in-process mitm proxy) and checks that every byte arrived once and
// in order:
//
//	conndemo [-size N] [-corrupt P] [-cut P] [-drop-after N] [-seed N]
//
// The program is package resh/internal/conndemocmd.
package main

import (
	"os"

	"resh/internal/conndemocmd"
)

func main() { os.Exit(conndemocmd.Run(os.Args[1:], os.Stdout, os.Stderr)) }
