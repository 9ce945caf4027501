//go:build !linux

package sigpipe

// die does nothing where SIGPIPE's default action cannot be restored
// behind the Go runtime: Die exits with the status instead.
func die() {}
