package store

import "sync"

// hub hands change notices to watchers. A notice is a value on a
// channel with room for one: a watcher that has not taken the last one
// yet gets no second, so notices never block and never pile up. A notice
// says "something changed since you last looked": the watcher reads the
// job (or the list) again.
type hub struct {
	mu   sync.Mutex
	subs map[int64]map[chan struct{}]struct{} // by job id, 0 for any job
}

// QueuedJobs, given to Watch, subscribes to the jobs that become queued:
// submitted, or back in the queue after a lost attempt. A scheduler's
// claimer watches it rather than every change (output, above all).
const QueuedJobs int64 = -1

// newHub returns an empty hub.
func newHub() *hub { return &hub{subs: make(map[int64]map[chan struct{}]struct{})} }

// watch subscribes to changes of job id (0: any job; QueuedJobs: jobs
// becoming queued).
func (h *hub) watch(id int64) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	set := h.subs[id]
	if set == nil {
		set = make(map[chan struct{}]struct{})
		h.subs[id] = set
	}
	set[ch] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			delete(h.subs[id], ch)
			if len(h.subs[id]) == 0 {
				delete(h.subs, id)
			}
		})
	}
}

// notify tells the watchers of these jobs (QueuedJobs among them when
// one became queued), and those of any job, that they changed.
func (h *hub) notify(ids ...int64) {
	if len(ids) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	signal := func(set map[chan struct{}]struct{}) {
		for ch := range set {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	for _, id := range ids {
		if id != 0 {
			signal(h.subs[id])
		}
	}
	signal(h.subs[0])
}

// notifyAll tells every watcher that its job may have changed: after
// notices may have been missed (a lost connection to PostgreSQL).
func (h *hub) notifyAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, set := range h.subs {
		for ch := range set {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}
