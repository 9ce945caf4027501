//go:build !linux

package reshdcmd

// unblockSignals does nothing where the signal mask cannot be read.
func unblockSignals() error { return nil }
