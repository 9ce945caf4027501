package cluster_test

import (
	"net"
	"testing"
	"time"

	"resh/cluster"
	"resh/proto"
)

// FuzzLink feeds an executor's link arbitrary bytes: those of its control
// stream (Join, then Load and Leave), then those of a stream it opens (an
// Attach and a transfer). The master must neither panic nor hang: the link
// ends when its control stream does, and an executor is registered only
// after a valid Join.
func FuzzLink(f *testing.F) {
	join := func(j cluster.Join) []byte {
		var b bytesWriter
		_ = proto.WriteMessage(&b, cluster.TypeJoin, j)
		_ = proto.WriteMessage(&b, cluster.TypeLoad, cluster.Load{Tasks: 1, CPU: 5})
		return b
	}
	attach := func(id uint64) []byte {
		var b bytesWriter
		_ = proto.WriteMessage(&b, cluster.TypeAttach, cluster.Attach{Session: id})
		return append(b, "data"...)
	}
	f.Add(join(cluster.Join{Version: 1, Name: "x", MaxTasks: 1, MaxCPU: 100}), attach(1))
	f.Add(join(cluster.Join{Version: 1, Name: "bad name", MaxTasks: 1, MaxCPU: 100}), []byte{0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 5, 40, '{', '}'}, []byte{0xff, 0xff, 0xff, 0xff, 47})
	f.Add([]byte{}, attach(0))
	f.Fuzz(func(t *testing.T, control, other []byte) {
		m := cluster.NewMaster(cluster.Config{})
		defer m.Close()
		a, b := net.Pipe()
		smux, err := proto.Server(a)
		if err != nil {
			t.Fatal(err)
		}
		emux, err := proto.Client(b)
		if err != nil {
			t.Fatal(err)
		}
		defer emux.Close()
		served := make(chan struct{})
		go func() {
			defer close(served)
			st, err := smux.AcceptStream()
			if err != nil {
				return
			}
			m.ServeLink(cluster.Link{Mux: smux, Control: st, Addr: "fuzz"})
		}()
		ctl, err := emux.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			_, _ = ctl.Write(control)
			if st, err := emux.OpenStream(); err == nil {
				_, _ = st.Write(other)
				_ = st.Close()
			}
			_ = ctl.Close()
		}()
		// The master answers (Welcome, Error) or not; the link ends once
		// the executor's side goes.
		go func() {
			buf := make([]byte, 4096)
			for {
				if _, err := ctl.Read(buf); err != nil {
					return
				}
			}
		}()
		time.AfterFunc(50*time.Millisecond, func() { _ = emux.Close() })
		select {
		case <-served:
		case <-time.After(20 * time.Second):
			t.Fatal("ServeLink did not return after the link ended")
		}
		_ = smux.Close()
		for _, e := range m.Executors() {
			if e.Name == "" {
				t.Fatalf("an executor without a name was registered: %+v", e)
			}
		}
	})
}

// bytesWriter collects what is written to it.
type bytesWriter []byte

func (b *bytesWriter) Write(p []byte) (int, error) {
	*b = append(*b, p...)
	return len(p), nil
}
