package proto

import (
	"sync"
	"testing"
	"time"
)

// The server opens more streams than its accept backlog at once: the opens
// beyond it wait for the client's acknowledgements instead of failing, and
// every stream arrives.
func TestServerOpensBeyondBacklog(t *testing.T) {
	cl, srv := sessions(t, nil)
	const n = 3 * ServerAcceptBacklog
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := srv.OpenStream()
			if err == nil {
				_, err = st.Write([]byte{byte(i)})
			}
			errs <- err
		}()
	}
	seen := map[byte]bool{}
	for range n {
		st, err := cl.AcceptStream()
		if err != nil {
			t.Fatal(err)
		}
		_ = st.SetReadDeadline(time.Now().Add(10 * time.Second))
		p := make([]byte, 1)
		if _, err := st.Read(p); err != nil {
			t.Fatal(err)
		}
		seen[p[0]] = true
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct streams, want %d", len(seen), n)
	}
}
