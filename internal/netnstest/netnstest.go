//go:build linux

// Package netnstest cuts a real network for tests: a network namespace
// joined to the test's own namespace by a veth pair, whose link a test takes
// down and up. It needs root and ip from iproute2; without them the tests
// that use it fail, unless RESH_NO_NETNS=1 says to skip them.
package netnstest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
)

// Required fails tb when network namespaces cannot be used, unless
// RESH_NO_NETNS=1.
func Required(tb testing.TB) {
	tb.Helper()
	if os.Getenv("RESH_NO_NETNS") == "1" {
		tb.Skip("RESH_NO_NETNS=1: network namespace tests skipped")
	}
	if os.Geteuid() != 0 {
		tb.Fatal("network namespace tests need root (set RESH_NO_NETNS=1 to skip them)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		tb.Fatal("network namespace tests need ip from iproute2 (set RESH_NO_NETNS=1 to skip them)")
	}
}

var links atomic.Int32

// Link is a namespace NS reachable from the test's namespace over a veth
// pair: the test's end has HostIP, the namespace's end NSIP.
type Link struct {
	tb      testing.TB
	NS      string
	HostIP  string
	NSIP    string
	hostDev string
}

// NewLink creates a namespace and its link, both removed when the test ends.
func NewLink(tb testing.TB) *Link {
	tb.Helper()
	Required(tb)
	n := links.Add(1)
	l := &Link{
		tb:      tb,
		NS:      fmt.Sprintf("resh-%d-%d-l", os.Getpid(), n),
		HostIP:  fmt.Sprintf("10.%d.%d.1", netOctet(), n%250),
		NSIP:    fmt.Sprintf("10.%d.%d.2", netOctet(), n%250),
		hostDev: fmt.Sprintf("rsh%x", (os.Getpid()%0xfffff)<<4|int(n%16)),
	}
	l.ip("netns", "add", l.NS)
	tb.Cleanup(func() { _ = exec.Command("ip", "netns", "del", l.NS).Run() })
	l.ip("link", "add", l.hostDev, "type", "veth", "peer", "name", "veth1", "netns", l.NS)
	tb.Cleanup(func() { _ = exec.Command("ip", "link", "del", l.hostDev).Run() })
	l.ip("addr", "add", l.HostIP+"/24", "dev", l.hostDev)
	// While the link is down its route goes with it, and the namespace's
	// address would be sent by the default route: a virtual machine's
	// gateway may answer for it with a reset, so that the outage looks like
	// a server that refuses (and resh gives up, -give-up). An unreachable
	// route below the link's keeps the outage an outage: no route to the
	// host, as a router that lost the path says.
	subnet := fmt.Sprintf("10.%d.%d.0/24", netOctet(), n%250)
	l.ip("route", "add", "unreachable", subnet, "metric", "4242")
	tb.Cleanup(func() { _ = exec.Command("ip", "route", "del", "unreachable", subnet, "metric", "4242").Run() })
	l.ip("-n", l.NS, "addr", "add", l.NSIP+"/24", "dev", "veth1")
	// After the link comes back the first ARP exchange is often lost and
	// Linux retries after 1 s; retry every 100 ms instead.
	l.ip("ntable", "change", "name", "arp_cache", "dev", l.hostDev, "retrans", "100")
	l.ip("-n", l.NS, "ntable", "change", "name", "arp_cache", "dev", "veth1", "retrans", "100")
	l.ip("-n", l.NS, "link", "set", "lo", "up")
	l.Up()
	l.ip("-n", l.NS, "link", "set", "veth1", "up")
	return l
}

// netOctet is the second octet of this process's links' addresses, so that
// two test processes at once (go test runs packages in parallel) do not
// share a subnet, nor its route.
func netOctet() int { return 100 + os.Getpid()%100 }

// Down takes the link down: nothing passes either way.
func (l *Link) Down() { l.tb.Helper(); l.ip("link", "set", l.hostDev, "down") }

// Up brings the link back.
func (l *Link) Up() { l.tb.Helper(); l.ip("link", "set", l.hostDev, "up") }

// Command returns name with args to be run inside the namespace.
func (l *Link) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", l.NS, name}, args...)...)
}

func (l *Link) ip(args ...string) {
	l.tb.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.tb.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}
