package connection

import (
	"errors"
	"fmt"
)

// Errors returned by the package. Each message starts with "connection:";
// callers compare with errors.Is.
var (
	// ErrServerClosed is returned by Server.Accept after Server.Close.
	ErrServerClosed = errors.New("connection: server closed")

	// ErrSessionExpired is read by an Accepted whose client did not come
	// back within Config.DetachTimeout.
	ErrSessionExpired = errors.New("connection: session expired: the client did not reconnect in time")

	// ErrResumeTimeout is returned by a Client that could not reach its
	// server again within Config.ResumeTimeout.
	ErrResumeTimeout = errors.New("connection: could not resume the session in time")

	// ErrUnknownSession is returned when the server does not know (or no
	// longer knows) the session a client tries to resume.
	ErrUnknownSession = errors.New("connection: the server does not know this session (expired or server restarted)")

	// ErrBadSecret is returned when a resume does not prove the session
	// secret.
	ErrBadSecret = errors.New("connection: resume refused: wrong session secret")

	// ErrVersion is returned when the two ends speak different protocol
	// versions.
	ErrVersion = errors.New("connection: protocol version mismatch")

	// ErrNotResh is returned when the peer does not speak this protocol:
	// garbage where a handshake was expected.
	ErrNotResh = errors.New("connection: peer does not speak the resh connection protocol")

	// ErrPeerClosed is returned by Write once the peer has closed the
	// connection: the bytes of that Write were not delivered.
	ErrPeerClosed = errors.New("connection: peer closed the connection")

	// ErrDrainTimeout is returned by Close when bytes written before it were
	// not all acknowledged by the peer within Config.DrainTimeout.
	ErrDrainTimeout = errors.New("connection: close: peer did not acknowledge every byte in time")

	// ErrAborted is returned by Read and Write after Abort.
	ErrAborted = errors.New("connection: session abandoned by this side")

	// ErrWriteAfterCloseWrite is returned by Write after CloseWrite.
	ErrWriteAfterCloseWrite = errors.New("connection: write after CloseWrite")

	// ErrServerBusy is returned by Dial when the server's accept backlog is
	// full.
	ErrServerBusy = errors.New("connection: server busy: accept backlog full")

	// ErrSecurityMismatch is returned by Dial when the server and the
	// client disagree on Config.SecureAbove: one runs TLS above the
	// connection, the other does not.
	ErrSecurityMismatch = errors.New("connection: security layer mismatch")

	// ErrNotKeyed ends a session secured from above (Config.SecureAbove)
	// whose transport failed before SetResumeKey: nothing could prove a
	// resume, so the session cannot survive it.
	ErrNotKeyed = errors.New("connection: transport lost before the session was secured: it cannot be resumed")

	// ErrProtocol reports a peer that broke the protocol (for example, it
	// acknowledged bytes that were never sent).
	ErrProtocol = errors.New("connection: protocol violation")
)

// rejectError carries a REJECT frame's reason; it unwraps to the sentinel
// matching its code.
type rejectError struct {
	code rejectCode
	msg  string
}

func (e *rejectError) Error() string {
	return fmt.Sprintf("%v (server said: %s)", e.Unwrap(), e.msg)
}

func (e *rejectError) Unwrap() error {
	switch e.code {
	case rejectVersion:
		return ErrVersion
	case rejectUnknown:
		return ErrUnknownSession
	case rejectSecret:
		return ErrBadSecret
	case rejectBusy:
		return ErrServerBusy
	case rejectClosed:
		return ErrPeerClosed
	default:
		return ErrProtocol
	}
}

// permanent reports whether a failed resume should stop the redial loop.
func permanent(err error) bool {
	var r *rejectError
	if errors.As(err, &r) {
		return r.code != rejectBusy
	}
	return errors.Is(err, ErrVersion) || errors.Is(err, ErrSecurityMismatch)
}
