package server

import "resh/connection"

// Stats is what a Server serves now, for its metrics.
type Stats struct {
	// Sessions counts the resh sessions being served now: clients'
	// sessions (commands, shells, jobs), whether they run here, wait for an
	// executor or are relayed to one, and those handed over by ServeConn
	// or ServeMux. Executors' links are not sessions: they are in Links.
	Sessions int
	// Links counts the executors' links this master holds now.
	Links int
	// Connection is the connection layer's account of the listener:
	// sessions and links alike, ended ones included in its totals. It is
	// zero for a Server made by New, which has no listener.
	Connection connection.ServerStats
}

// Stats returns what the Server serves now. It is cheap (one pass over
// the live sessions) and safe to call at any time, after Shutdown too.
func (s *Server) Stats() Stats {
	var st Stats
	s.mu.Lock()
	for ss := range s.sessions {
		if ss.isLink {
			st.Links++
		} else {
			st.Sessions++
		}
	}
	s.mu.Unlock()
	if s.ln != nil {
		st.Connection = s.ln.Stats()
	}
	return st
}
