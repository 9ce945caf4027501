package proto

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// NotInSession is the message of lcat or ltee started outside a resh
// session.
const NotInSession = "not inside a resh session (RESH_SOCKET is not set)"

// ErrNoSession is returned when RESH_SOCKET cannot be reached.
var ErrNoSession = errors.New("not inside a resh session")

// DialSession connects to the session's RESH_SOCKET; failing, its error says
// that this is not a working resh session.
func DialSession(ctx context.Context, socket string) (*net.UnixConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Err != nil {
			err = oe.Err // drop the "dial unix PATH:" prefix
		}
		return nil, fmt.Errorf("%w (cannot reach RESH_SOCKET %s: %v)", ErrNoSession, socket, err)
	}
	return c.(*net.UnixConn), nil
}

// OpenTransfer starts a transfer (proto/spec.md §3) through the session's
// socket: it sends open and reads the client's reply. A refusal or failure
// comes back as an error for the user, prefixed by the path; cancelling ctx
// closes the connection.
func OpenTransfer(ctx context.Context, socket string, open TransferOpen) (*net.UnixConn, TransferReply, error) {
	var reply TransferReply
	c, err := DialSession(ctx, socket)
	if err != nil {
		return nil, reply, err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	if err := WriteMessage(c, TypeTransferOpen, open); err != nil {
		_ = c.Close()
		return nil, reply, fmt.Errorf("%s: asking reshd: %w", open.Path, err)
	}
	if err := Expect(c, TypeTransferReply, &reply); err != nil {
		_ = c.Close()
		return nil, reply, fmt.Errorf("%s: %s", open.Path, Describe(err))
	}
	if !reply.OK {
		_ = c.Close()
		return nil, reply, errors.New(WithPath(open.Path, reply.Error))
	}
	return c, reply, nil
}

// Describe turns a failure to read a reply into a message for the user.
func Describe(err error) string {
	var re *RemoteError
	switch {
	case errors.As(err, &re):
		return re.Message
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the resh session ended before the client answered"
	}
	return err.Error()
}

// WithPath prefixes a client's message with the file name, unless it
// already starts with it.
func WithPath(name, msg string) string {
	if msg == "" {
		msg = "refused by the client"
	}
	if strings.HasPrefix(msg, name+":") {
		return msg
	}
	return name + ": " + msg
}
