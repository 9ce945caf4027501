//go:build linux

package connection

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// netlinkGroups are the rtnetlink multicast groups watched: links up and
// down, addresses and routes added and removed.
const netlinkGroups = unix.RTMGRP_LINK |
	unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR |
	unix.RTMGRP_IPV4_ROUTE | unix.RTMGRP_IPV6_ROUTE

// startNetSource listens to rtnetlink and calls changed after each burst of
// messages (whatever they say: every one is a change worth a look, and a
// burst is read whole before changed is called). The socket is non-blocking
// and read through the runtime's poller, so that stop can close it and wait
// for the goroutine.
func startNetSource(changed func()) (stop func(), err error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: netlinkGroups}); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	f := os.NewFile(uintptr(fd), "rtnetlink")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			got := false
			var rerr error
			err := rc.Read(func(fd uintptr) bool {
				for {
					_, _, err := unix.Recvfrom(int(fd), buf, 0)
					switch {
					case err == nil, errors.Is(err, unix.ENOBUFS):
						got = true // ENOBUFS: messages were lost, so something changed
					case errors.Is(err, unix.EINTR):
					case errors.Is(err, unix.EAGAIN):
						return got // wait for the poller unless a burst was read
					default:
						rerr = err
						return true
					}
				}
			})
			if err != nil || rerr != nil {
				return // closed by stop, or the socket failed: no more changes
			}
			changed()
		}
	}()
	return func() {
		f.Close()
		<-done
	}, nil
}
