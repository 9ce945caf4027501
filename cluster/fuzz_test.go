package cluster_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

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

// FuzzJobConn feeds the master's end of a job stream arbitrary bytes from
// an executor (its answer to JobRun, then the job's messages): RunJob and
// the JobConn's Next must neither panic nor hang; Next ends with the end
// and io.EOF, or an error.
func FuzzJobConn(f *testing.F) {
	msg := func(ty proto.Type, v any) []byte {
		var b bytesWriter
		_ = proto.WriteMessage(&b, ty, v)
		return b
	}
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	f.Add(cat(msg(cluster.TypeAccept, cluster.Accept{}),
		msg(cluster.TypeJobOutput, cluster.JobOutput{Stream: 1, Data: []byte("hi")}),
		msg(cluster.TypeJobEnd, cluster.JobEnd{Verdict: proto.Verdict{Verdict: proto.VerdictOK}})))
	f.Add(cat(msg(cluster.TypeAccept, cluster.Accept{}), msg(cluster.TypeJobOutput, cluster.JobOutput{Stream: 9, Offset: -1})))
	f.Add(msg(cluster.TypeRefuse, cluster.Refuse{Reason: cluster.RefuseFull}))
	f.Add([]byte{0, 0, 0, 2, 44, '{'})
	f.Fuzz(func(t *testing.T, answer []byte) {
		m := cluster.NewMaster(cluster.Config{OfferTimeout: 100 * time.Millisecond})
		defer m.Close()
		joinJobs(t, m, cluster.Join{Version: cluster.LinkVersion, Name: "x", MaxTasks: 1, MaxCPU: 100, Languages: []string{"sh"}}, nil,
			func(st *yamux.Stream, _ proto.Type, _ []byte) {
				_, _ = io.Copy(io.Discard, io.LimitReader(st, 4)) // the source
				_, _ = st.Write(answer)
				_ = st.Close()
			})
		done := make(chan struct{})
		go func() {
			defer close(done)
			c, err := m.RunJob(context.Background(), cluster.JobRun{ID: 1, Lease: 1, Lang: "sh", NoStdin: true}, []byte("true"), nil)
			if err != nil {
				return
			}
			defer c.Close()
			for range 1 << 16 {
				if _, _, err := c.Next(); err != nil {
					return
				}
			}
			t.Error("Next never ended")
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("RunJob or Next hung")
		}
	})
}
