package reshjobcmd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"resh/client"
	"resh/proto"
)

// harmless is the command of every query's Hello: a server that predates
// queries ignores Query (and, older still, Job) and runs it instead of a
// login shell fed with what reshjob sends; reshjob closes the session as
// soon as it sees Started (proto/spec.md §5.1).
const harmless = "echo 'reshd: this server cannot keep jobs (it predates durable jobs)' >&2; exit 125"

// errOlder is the error for a server that does not know a query.
func errOlder(o *client.Options) error {
	return fmt.Errorf("reshd at %s cannot keep jobs: it is older than durable jobs", o.Addr())
}

// answerTimeout is how long reshjob waits for the answer to a query that
// is answered at once (every query but attach's stream): Env's
// StartTimeout, else client.StartTimeout.
func answerTimeout(env client.Env) time.Duration {
	if env.StartTimeout > 0 {
		return env.StartTimeout
	}
	return client.StartTimeout
}

// query opens a session to the host of o, sends hello (its Version and
// Command set here) and, with src not nil, src then stdin on the stdin
// stream, half-closed after them; for a query without stdin, the stdin
// stream is half-closed at once. sent is closed once all of it is
// written (or the session failed).
func query(ctx context.Context, o *Options, env client.Env, hello proto.Hello, src, stdin []byte) (s *client.Session, sent <-chan struct{}, err error) {
	s, err = client.Open(ctx, &o.Client, env, "reshjob")
	if err != nil {
		return nil, nil, err
	}
	if sent, err = sendQuery(s, hello, src, stdin); err != nil {
		s.Close()
		return nil, nil, err
	}
	return s, sent, nil
}

// sendQuery sends hello on s and the bytes of the stdin stream (see query).
func sendQuery(s *client.Session, hello proto.Hello, src, stdin []byte) (<-chan struct{}, error) {
	hello.Version = proto.Version
	hello.Command = harmless
	if err := s.Send(proto.TypeHello, hello); err != nil {
		return nil, s.Lost(err)
	}
	// The bytes go from a goroutine of their own: the server reads them
	// while it answers. A failed write means the session is over, which
	// the reader of control reports.
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		if src != nil {
			if _, err := s.Stdin.Write(src); err != nil {
				return
			}
			if _, err := s.Stdin.Write(stdin); err != nil {
				return
			}
		}
		_ = s.Stdin.Close()
	}()
	return sent, nil
}

// answer reads the answer to a query on s's control stream, within
// timeout from when sent is closed (none when 0), and decodes it into v when its type is want. An
// Error is an error carrying the server's message; Started (a login shell:
// the server ignored the query) and an Error saying the query is unknown
// are errOlder.
func answer(s *client.Session, o *Options, sent <-chan struct{}, timeout time.Duration, want proto.Type, v any) error {
	if timeout > 0 {
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			select {
			case <-sent:
				_ = s.Control.SetReadDeadline(time.Now().Add(timeout))
			case <-stop:
			}
		}()
		defer func() {
			close(stop)
			<-done
			_ = s.Control.SetReadDeadline(time.Time{})
		}()
	}
	t, body, err := proto.ReadMessage(s.Control)
	if err != nil {
		if timeout > 0 && isTimeout(err) {
			return fmt.Errorf("no answer from %s within %v", o.Client.Addr(), timeout)
		}
		return unanswered{s.Lost(fmt.Errorf("the server closed the session before it answered: %w", err))}
	}
	return decodeAnswer(o, t, body, want, v)
}

// decodeAnswer decodes a message of type t as answer (see answer).
func decodeAnswer(o *Options, t proto.Type, body []byte, want proto.Type, v any) error {
	switch t {
	case want:
		if err := proto.Decode(body, v); err != nil {
			return fmt.Errorf("protocol error: %w", err)
		}
		return nil
	case proto.TypeError:
		return remoteError(o, body)
	case proto.TypeStarted:
		return errOlder(&o.Client)
	}
	return fmt.Errorf("protocol error: %w: got type %d, want %d", proto.ErrUnexpected, t, want)
}

// remoteError is the error of an Error message: its message, or errOlder
// for a server that says it does not know the query.
func remoteError(o *Options, body []byte) error {
	var e proto.Error
	if err := proto.Decode(body, &e); err != nil {
		return fmt.Errorf("protocol error: %w", err)
	}
	if strings.HasPrefix(e.Message, "reshd: unknown query") {
		return errOlder(&o.Client)
	}
	return &proto.RemoteError{Message: e.Message}
}

// isTimeout reports whether err is a deadline's.
func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// unanswered is a session lost before the answer to its query came: the
// query may have been acted on.
type unanswered struct{ err error }

func (u unanswered) Error() string { return u.err.Error() }
func (u unanswered) Unwrap() error { return u.err }
