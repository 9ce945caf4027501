// Command mitm is a fault-injecting man-in-the-middle TCP proxy: it sits
// between a client and a server, shows what passes and damages it on
// purpose, reproducibly (see package resh/mitm).
//
//	mitm -listen ADDR -target ADDR [flags]
//
// Run mitm -h for the flags. The program is package resh/internal/mitmcmd.
package main

import (
	"os"

	"resh/internal/mitmcmd"
)

func main() { os.Exit(mitmcmd.Main(os.Args)) }
