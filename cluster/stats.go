package cluster

// Waiting returns how many sessions are in the queue for an executor now:
// those waiting for room, and any being offered to executors at this
// instant (a session placed at once passes through the queue too).
func (m *Master) Waiting() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.queue)
}
