package executor

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"resh/auth"
	"resh/connection"
	"resh/proto"
)

// diagnose says why a join failed, for the log, in the admin's terms and
// with what to do; fatal is a failure that retrying cannot mend.
func (e *executor) diagnose(err error) (msg string, fatal bool) {
	var re *proto.RemoteError
	switch {
	case auth.IsHostKeyError(err):
		return "refusing the master's key (see known_hosts)", true
	case e.identity != nil && auth.Refusal(err, e.identity) != nil:
		pub := auth.PublicKey(e.identity)
		line := strings.TrimSpace(string(auth.AuthorizedLine(pub, e.cfg.Name)))
		return fmt.Sprintf("the master does not accept this executor's key %s: add this line to RESH_HOME/executors on the master: %s", auth.Fingerprint(pub), line), false
	case notMaster(err):
		return e.cfg.Master + " is a reshd but not a master (-master)", false
	case errors.Is(err, connection.ErrSecurityMismatch) && e.cfg.Insecure:
		return "the master requires TLS: join it without -insecure", false
	case errors.Is(err, connection.ErrSecurityMismatch):
		return "the master runs without TLS (reshd -insecure): join it with -insecure, on loopback only", false
	case errors.As(err, &re):
		return "the master refused the join: " + re.Message, false
	}
	return "cannot join the master", false
}

// notMaster reports whether err says that the server is not a master: it
// answered the link's application protocol with the TLS alert
// no_application_protocol, or completed the handshake without it.
func notMaster(err error) bool {
	if errors.Is(err, errNotMaster) {
		return true
	}
	var op *net.OpError
	for e := err; errors.As(e, &op); e = op.Err {
		if op.Op == "remote error" {
			return op.Err.Error() == "tls: no application protocol" // alert 120
		}
	}
	return false
}
