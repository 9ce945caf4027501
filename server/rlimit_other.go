//go:build !linux

package server

import "log/slog"

// RaiseFileLimit does nothing here: the Go runtime raises the soft limit on
// open files where the system allows it.
func RaiseFileLimit(*slog.Logger) {}
