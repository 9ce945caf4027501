package connection

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Config tunes a Client or a Server. A nil *Config means DefaultConfig();
// zero fields take their default.
type Config struct {
	// WindowSize is the most DATA frames in flight, unacknowledged, in each
	// direction. Default 4.
	WindowSize int
	// MaxFrameSize is the largest payload of a DATA frame, in bytes. The
	// frame size shrinks under damage and grows back when frames get
	// through. Default 128 KiB (see README: throughput against memory);
	// at most 1 MiB.
	MaxFrameSize int
	// MinFrameSize is the smallest payload the frame size shrinks to under
	// damage. Default 256.
	MinFrameSize int
	// SendBuffer is how many written bytes may wait for acknowledgement
	// before Write blocks. Default WindowSize*MaxFrameSize.
	SendBuffer int
	// RecvBuffer is how many received bytes may wait for Read; it is the
	// window advertised to the peer. Default WindowSize*MaxFrameSize.
	RecvBuffer int

	// Dial opens the transport. Default: net.Dialer.DialContext. A test
	// passes a faulty transport here; TLS wraps its connection here.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)

	// HandshakeTimeout bounds each handshake. Default 10s.
	HandshakeTimeout time.Duration
	// HeartbeatInterval is how long a side stays silent before it sends a
	// PING. Default 1s.
	HeartbeatInterval time.Duration
	// DeadTimeout is how long without any frame from the peer before the
	// transport is declared dead and replaced. Default 5s.
	DeadTimeout time.Duration
	// MinRTO and MaxRTO bound the retransmission timeout, which otherwise
	// follows the measured round-trip time (RFC 6298). Defaults 50ms, 3s:
	// the transport below handles congestion, so a retransmission only
	// repairs damage and need not wait as long as TCP's 200ms.
	MinRTO, MaxRTO time.Duration
	// DetachTimeout is how long a Server keeps a session whose transport was
	// lost, waiting for its client to resume. Default 10 minutes.
	DetachTimeout time.Duration
	// ResumeTimeout is how long a Client keeps redialling after losing its
	// transport. Default: DetachTimeout.
	ResumeTimeout time.Duration
	// RefusedTimeout, if positive, ends a Client's session with
	// ErrServerGone once every redial has been refused (connection
	// refused: nothing listens, the server process is gone and the session
	// with it) for that long. Other failures keep redialling for
	// ResumeTimeout. Default 0: refusals too.
	RefusedTimeout time.Duration
	// RedialMin and RedialMax bound the Client's exponential backoff between
	// redials (with ±50% jitter) after the server answered and refused: the
	// connection was refused, the server was busy or the resume handshake
	// failed. Defaults 50ms and 5s.
	RedialMin, RedialMax time.Duration
	// RedialInterval paces the redials that cost the server nothing: while
	// connects fail without reaching it (network unreachable or down, no
	// route, the address gone, no answer), the Client starts a new connect
	// every RedialInterval, without waiting for those still in flight (at
	// most 10), whose SYNs may have been lost; the first to connect is
	// used, the others are closed. Default 100ms.
	RedialInterval time.Duration
	// NetworkChanges subscribes a Client to the changes of the host's
	// network; it returns a channel receiving them and a function ending
	// the subscription. On a change the Client redials at once if it has
	// lost its transport, replaces its transport if the transport's local
	// address is gone, and looks for a new path if the transport has been
	// silent for longer than a heartbeat. Default: WatchNetwork. To watch
	// nothing, return a nil channel.
	NetworkChanges func() (changes <-chan NetworkChange, stop func())
	// DialAttempts is how many times Dial tries the first handshake when the
	// transport fails or is damaged during it. Default 3.
	DialAttempts int
	// DrainTimeout bounds how long Close waits, while attached, for a peer
	// that acknowledges nothing of what was written before it. Time spent
	// without a transport does not count: the session is then kept for
	// DetachTimeout (Server) or ResumeTimeout (Client). Default:
	// DetachTimeout.
	DrainTimeout time.Duration
	// Backlog is how many new sessions a Server holds for Accept. Default 128.
	Backlog int

	// SecureAbove says that a security layer (TLS) runs over the session
	// and installs the resume key with SetResumeKey once its handshake is
	// done: the session secret then never travels in the connection's own
	// handshake, and only the holder of the security layer's session can
	// resume. Until the key is installed, losing the transport ends the
	// session (ErrNotKeyed). Client and Server must agree: Dial fails with
	// ErrSecurityMismatch otherwise.
	SecureAbove bool

	// OnState, if set, is called (from the Client's own goroutine) when the
	// Client loses its transport and when it has resumed.
	OnState func(StateEvent)
	// Logger receives debug and warning events. Default: discard.
	Logger *slog.Logger
}

// StateEvent reports a change of a Client's transport.
type StateEvent struct {
	// Connected is true once a resume succeeded, false when the transport
	// was lost and redialling starts (Err says why) or a redial failed.
	Connected bool
	// Attempt counts redials since the transport was lost.
	Attempt int
	// Err is the reason the transport was lost or a redial failed.
	Err error
}

// DefaultConfig returns the default configuration.
func DefaultConfig() *Config {
	c := &Config{}
	c.setDefaults()
	return c
}

func (c *Config) clone() *Config {
	var n Config
	if c != nil {
		n = *c
	}
	n.setDefaults()
	return &n
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

func (c *Config) setDefaults() {
	setDefault(&c.WindowSize, 4)
	setDefault(&c.MaxFrameSize, 128<<10)
	setDefault(&c.MinFrameSize, 256)
	setDefault(&c.SendBuffer, c.WindowSize*c.MaxFrameSize)
	setDefault(&c.RecvBuffer, c.WindowSize*c.MaxFrameSize)
	setDefault(&c.HandshakeTimeout, 10*time.Second)
	setDefault(&c.HeartbeatInterval, time.Second)
	setDefault(&c.DeadTimeout, 5*time.Second)
	setDefault(&c.MinRTO, 50*time.Millisecond)
	setDefault(&c.MaxRTO, 3*time.Second)
	setDefault(&c.DetachTimeout, 10*time.Minute)
	setDefault(&c.ResumeTimeout, c.DetachTimeout)
	setDefault(&c.RedialMin, 50*time.Millisecond)
	setDefault(&c.RedialMax, 5*time.Second)
	setDefault(&c.RedialInterval, 100*time.Millisecond)
	setDefault(&c.DialAttempts, 3)
	setDefault(&c.DrainTimeout, c.DetachTimeout)
	setDefault(&c.Backlog, 128)
	if c.Dial == nil {
		var d net.Dialer
		c.Dial = d.DialContext
	}
	if c.NetworkChanges == nil {
		c.NetworkChanges = WatchNetwork
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// validate reports a configuration that cannot work.
func (c *Config) validate() error {
	switch {
	case c.WindowSize < 1 || c.WindowSize > 1024:
		return fmt.Errorf("connection settings: WindowSize %d out of range 1..1024", c.WindowSize)
	case c.MaxFrameSize < 1 || c.MaxFrameSize > maxPayload:
		return fmt.Errorf("connection settings: MaxFrameSize %d out of range 1..%d", c.MaxFrameSize, maxPayload)
	case c.MinFrameSize < 1 || c.MinFrameSize > c.MaxFrameSize:
		return fmt.Errorf("connection settings: MinFrameSize %d out of range 1..MaxFrameSize", c.MinFrameSize)
	case c.RecvBuffer < 1 || c.RecvBuffer > 1<<31-1:
		return fmt.Errorf("connection settings: RecvBuffer %d out of range", c.RecvBuffer)
	case c.SendBuffer < 1:
		return fmt.Errorf("connection settings: SendBuffer %d out of range", c.SendBuffer)
	case c.DeadTimeout <= c.HeartbeatInterval:
		return fmt.Errorf("connection settings: DeadTimeout %v must exceed HeartbeatInterval %v", c.DeadTimeout, c.HeartbeatInterval)
	case c.MinRTO > c.MaxRTO:
		return fmt.Errorf("connection settings: MinRTO %v over MaxRTO %v", c.MinRTO, c.MaxRTO)
	}
	return nil
}
