package connection

import (
	"testing"
	"time"
)

func TestTransferBothDirections(t *testing.T) {
	_, cl, acc := pair(t, fastConfig())
	up := randomBytesN(3<<20+17, 1)
	down := randomBytesN(2<<20+5, 2)
	done := make(chan struct{})
	go func() {
		defer close(done)
		transfer(t, acc, cl, down, 20*time.Second)
	}()
	transfer(t, cl, acc, up, 20*time.Second)
	<-done
	if err := cl.Close(); err != nil {
		t.Fatalf("client close: %v", err)
	}
	if err := acc.Close(); err != nil {
		t.Fatalf("accepted close: %v", err)
	}
}
