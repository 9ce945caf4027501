package connection

import (
	"errors"
	"fmt"
)

// Errors returned by the package; callers compare with errors.Is. Their
// messages reach users (resh prints them after what it was doing), so
// they say what happened in the user's terms, without the package name.
var (
	// ErrServerClosed is returned by Server.Accept after Server.Close.
	ErrServerClosed = errors.New("the server was shut down")

	// ErrSessionExpired is read by an Accepted whose client did not come
	// back within Config.DetachTimeout.
	ErrSessionExpired = errors.New("the session expired: the client did not reconnect in time")

	// ErrResumeTimeout is returned by a Client that could not reach its
	// server again within Config.ResumeTimeout.
	ErrResumeTimeout = errors.New("could not reach the server again in time")

	// ErrUnknownSession is returned when the server does not know (or no
	// longer knows) the session a client tries to resume.
	ErrUnknownSession = errors.New("the server no longer knows this session (it expired, or the server restarted)")

	// ErrBadSecret is returned when a resume does not prove the session
	// secret.
	ErrBadSecret = errors.New("the server refused to resume the session: wrong session secret")

	// ErrVersion is returned when the two ends speak different protocol
	// versions.
	ErrVersion = errors.New("the server speaks another version of resh")

	// ErrNotResh is returned when the peer does not speak this protocol:
	// garbage where a handshake was expected.
	ErrNotResh = errors.New("the other end is not a resh server or client")

	// ErrPeerClosed is returned by Write once the peer has closed the
	// connection: the bytes of that Write were not delivered.
	ErrPeerClosed = errors.New("the other end closed the connection")

	// ErrDrainTimeout is returned by Close when bytes written before it were
	// not all acknowledged by the peer within Config.DrainTimeout.
	ErrDrainTimeout = errors.New("the other end did not acknowledge every byte in time")

	// ErrAborted is returned by Read and Write after Abort.
	ErrAborted = errors.New("the session was abandoned")

	// ErrWriteAfterCloseWrite is returned by Write after CloseWrite.
	ErrWriteAfterCloseWrite = errors.New("write after the end of the output")

	// ErrServerBusy is returned by Dial when the server's accept backlog is
	// full.
	ErrServerBusy = errors.New("the server is busy (too many connections waiting): try again")

	// ErrSecurityMismatch is returned by Dial when the server and the
	// client disagree on Config.SecureAbove: one runs TLS above the
	// connection, the other does not.
	ErrSecurityMismatch = errors.New("the server and the client disagree on TLS (-insecure on one side only)")

	// ErrNotKeyed ends a session secured from above (Config.SecureAbove)
	// whose transport failed before SetResumeKey: nothing could prove a
	// resume, so the session cannot survive it.
	ErrNotKeyed = errors.New("the connection was lost before the session was secured, so it cannot be resumed")

	// ErrProtocol reports a peer that broke the protocol (for example, it
	// acknowledged bytes that were never sent).
	ErrProtocol = errors.New("the other end broke the protocol")
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
