//go:build !linux

package connection

import "errors"

// startNetSource: no source of network changes here; Clients rely on their
// timers (Config.RedialInterval, the silence before probing, DeadTimeout).
func startNetSource(func()) (func(), error) {
	return nil, errors.ErrUnsupported
}
