package connection

// ServerStats is what a Server has served: its live sessions, and the
// counters of every session it served, ended ones included.
type ServerStats struct {
	// Sessions is how many sessions the Server holds now: accepted or
	// waiting to be, attached or waiting for a resume.
	Sessions int
	// Total sums the Stats of every session this Server served: those it
	// holds now, as they stand, and those that ended, as they ended.
	// FrameSize, which is no count, is zero.
	Total Stats
}

// Stats returns what the Server has served. It costs one lock of each live
// session: the ended ones were added up when they ended (Server.forget).
// Each session is counted once, either live or ended, so that the totals
// never go back from one call to the next.
func (s *Server) Stats() ServerStats {
	s.mu.Lock()
	st := ServerStats{Sessions: len(s.sessions), Total: s.total}
	live := make([]*Accepted, 0, len(s.sessions))
	for _, a := range s.sessions {
		live = append(live, a)
	}
	s.mu.Unlock()
	// Outside the server's lock: a session's own lock is never taken
	// under it.
	for _, a := range live {
		st.Total.add(a.Stats())
	}
	return st
}

// add adds o's counts to s; FrameSize, which is no count, stays as it was.
func (s *Stats) add(o Stats) {
	s.FramesSent += o.FramesSent
	s.FramesReceived += o.FramesReceived
	s.BytesSent += o.BytesSent
	s.BytesReceived += o.BytesReceived
	s.Retransmits += o.Retransmits
	s.Timeouts += o.Timeouts
	s.Probes += o.Probes
	s.NaksSent += o.NaksSent
	s.NaksReceived += o.NaksReceived
	s.Damaged += o.Damaged
	s.Resumes += o.Resumes
}
